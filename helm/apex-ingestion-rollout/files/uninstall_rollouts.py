#!/usr/bin/env python3
"""`helm uninstall`'s pre-delete hook: no IngestionRollout may outlive the operator.

The operator (kopf) puts a finalizer on every rollout it handles, and only a running
operator takes it off. Helm never deletes CRDs, so after `helm uninstall` the rollouts
would stay, and deleting one later, or deleting its namespace, would hang for ever
(measured on kube-apiserver v1.35: the namespace stays Terminating with "Some content in
the namespace has finalizers remaining: kopf.zalando.org/KopfFinalizerMarker").

So, while the operator still runs (pre-delete hooks run before Helm deletes anything),
this deletes every rollout the operator watches (the release namespace, or every
namespace with operator.watchAllNamespaces) and waits for the operator to release them.
A rollout still there after RELEASE_WAIT_SECONDS (no operator running) has kopf's
finalizer removed here instead. `helm uninstall --no-hooks` keeps the rollouts.

Runs in the chart's image (its kubernetes client, its ingestion_contract) as the Job of
templates/uninstall-hook.yaml, with the rules of files/uninstall-rbac.yaml (checked
against this code by tests/unit/test_rbac_drift.py). Environment: ROLLOUT_NAMESPACE
(empty: every namespace), RELEASE_WAIT_SECONDS (default 30), KUBECONFIG outside a Pod.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, NamedTuple

import kubernetes
from ingestion_contract.crd import GROUP, PLURAL, VERSION

# kopf's default finalizer (kopf.OperatorSettings().persistence.finalizer; the operator
# keeps kopf's default, tests/unit/test_helm_uninstall_hook.py pins it).
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
POLL_SECONDS = 0.5
GONE_WAIT_SECONDS = 15.0  # after the finalizers are off, the server deletes at once


class Rollout(NamedTuple):
    namespace: str
    name: str
    finalizers: list[str]
    version: str  # metadata.resourceVersion


def client() -> kubernetes.client.CustomObjectsApi:
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config()
    return kubernetes.client.CustomObjectsApi()


def rollouts(api: kubernetes.client.CustomObjectsApi, namespace: str | None) -> list[Rollout]:
    """Every rollout in scope: the namespace, or every namespace (None)."""
    listed: Any  # the client's generated signature says `object`: the parsed JSON list
    if namespace:
        listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    else:
        listed = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    return [
        Rollout(
            item["metadata"]["namespace"],
            item["metadata"]["name"],
            item["metadata"].get("finalizers") or [],
            item["metadata"]["resourceVersion"],
        )
        for item in listed.get("items") or []
    ]


def wait_until_gone(
    api: kubernetes.client.CustomObjectsApi, namespace: str | None, seconds: float
) -> list[Rollout]:
    """The rollouts still there after `seconds` (polled)."""
    deadline = time.monotonic() + seconds
    left = rollouts(api, namespace)
    while left and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        left = rollouts(api, namespace)
    return left


def release(api: kubernetes.client.CustomObjectsApi, left: list[Rollout]) -> None:
    """Take kopf's finalizer off each rollout (other finalizers stay)."""
    for namespace, name, finalizers, version in left:
        if KOPF_FINALIZER not in finalizers:
            continue
        kept = [f for f in finalizers if f != KOPF_FINALIZER]
        # resourceVersion: a concurrent writer makes this fail (409) rather than be undone
        body = {"metadata": {"finalizers": kept or None, "resourceVersion": version}}
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)
        print(f"released {namespace}/{name}: no operator took its finalizer off")


def main() -> int:
    namespace = os.environ.get("ROLLOUT_NAMESPACE") or None
    wait = float(os.environ.get("RELEASE_WAIT_SECONDS") or 30)
    api = client()
    found = rollouts(api, namespace)
    for each_namespace, name, _, _ in found:
        api.delete_namespaced_custom_object(GROUP, VERSION, each_namespace, PLURAL, name)
        print(f"deleting {each_namespace}/{name}")
    left = wait_until_gone(api, namespace, wait)
    for _ in range(3):  # a 409 means the object changed meanwhile: read it again
        try:
            release(api, left)
            break
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
            left = rollouts(api, namespace)
    left = wait_until_gone(api, namespace, GONE_WAIT_SECONDS)
    names = [f"{ns}/{name}" for ns, name, _, _ in left]
    print(f"{len(found)} rollout(s) deleted; still there: {names or 'none'}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())

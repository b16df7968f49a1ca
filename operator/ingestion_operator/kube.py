"""The few Kubernetes calls the operator makes besides its own status and Events.

Synchronous `kubernetes` client calls run in a worker thread (asyncio.to_thread) so
kopf's event loop keeps serving other rollouts. A 404 becomes `MissingReference`,
which the handlers turn into a clear status message instead of a stack trace.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import kubernetes
from ingestion_contract.routing import format_percentage

MERGE_PATCH = "application/merge-patch+json"  # the client would pick JSON Patch for a dict


class MissingReference(Exception):
    """A ConfigMap or Deployment named by the rollout's spec does not exist."""


def _missing(kind: str, namespace: str, name: str, exc: Exception) -> Exception:
    if isinstance(exc, kubernetes.client.ApiException) and exc.status == 404:
        return MissingReference(f"{kind} {namespace}/{name} not found (named in the rollout spec)")
    return exc


@functools.cache
def _client() -> kubernetes.client.ApiClient:
    """One client (one connection pool) for the process, made after `configure`."""
    return kubernetes.client.ApiClient()


def _core() -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(_client())


def _apps() -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(_client())


def _require_configmap(namespace: str, name: str) -> None:
    try:
        _core().read_namespaced_config_map(name, namespace)
    except kubernetes.client.ApiException as exc:
        raise _missing("ConfigMap", namespace, name, exc) from exc


def _write_percentage(namespace: str, name: str, key: str, percentage: int) -> None:
    body = {"data": {key: format_percentage(percentage)}}
    try:
        _core().patch_namespaced_config_map(name, namespace, body, _content_type=MERGE_PATCH)
    except kubernetes.client.ApiException as exc:
        raise _missing("ConfigMap", namespace, name, exc) from exc


@dataclass(frozen=True)
class Replicas:
    """A Deployment's replicas: asked for (spec) and available (status.availableReplicas,
    Pods Ready for minReadySeconds, as the Deployment controller counts them)."""

    wanted: int
    available: int


def _read_replicas(namespace: str, name: str) -> Replicas:
    try:
        deployment: Any = _apps().read_namespaced_deployment(name, namespace)
    except kubernetes.client.ApiException as exc:
        raise _missing("Deployment", namespace, name, exc) from exc
    status = deployment.status
    available = (status.available_replicas if status is not None else None) or 0
    return Replicas(int(deployment.spec.replicas or 0), int(available))


def _scale(namespace: str, name: str, replicas: int) -> None:
    body = {"spec": {"replicas": replicas}}
    try:
        _apps().patch_namespaced_deployment_scale(name, namespace, body, _content_type=MERGE_PATCH)
    except kubernetes.client.ApiException as exc:
        raise _missing("Deployment", namespace, name, exc) from exc


async def require_configmap(namespace: str, name: str) -> None:
    """MissingReference unless the ConfigMap exists (its content is the API's to read)."""
    await asyncio.to_thread(_require_configmap, namespace, name)


async def write_percentage(namespace: str, name: str, key: str, percentage: int) -> None:
    """Merge-patch one key, in the contract's format, leaving the ConfigMap's other keys
    to their owners."""
    await asyncio.to_thread(_write_percentage, namespace, name, key, percentage)


async def read_replicas(namespace: str, name: str) -> Replicas:
    """A Deployment's replicas, asked for and available."""
    return await asyncio.to_thread(_read_replicas, namespace, name)


async def scale(namespace: str, name: str, replicas: int) -> None:
    """Set replicas through the scale subresource, as an HPA or kubectl scale would."""
    await asyncio.to_thread(_scale, namespace, name, replicas)


def configure(kubeconfig: str | None = None) -> None:
    """Load credentials: in-cluster when running in a Pod, else KUBECONFIG/~/.kube/config."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=kubeconfig)
    _client.cache_clear()

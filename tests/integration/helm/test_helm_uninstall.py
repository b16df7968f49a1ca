"""`helm uninstall` and the rollouts, on a real kube-apiserver, with and without an operator.

What a real server does (measured here, kube-apiserver v1.35): Helm never deletes the CRD,
so rollouts outlive the release, each with the operator's (kopf's) finalizer. Deleting one
afterwards, or its namespace, waits for ever: the namespace stays Terminating. The chart's
pre-delete hook (templates/uninstall-hook.yaml, files/uninstall_rollouts.py) deletes the
rollouts while the operator still runs, and takes the finalizer off itself when no operator
releases them.

kwok's fake kubelet runs no container: it marks the hook Job's Pod Succeeded at once. So
these tests run the hook's Pod themselves, on this host, exactly as the release defines it
(`helm get hooks`): its ServiceAccount, Role and RoleBinding applied, its script from its
ConfigMap run with the command and environment of its Job and a TokenRequest token of its
ServiceAccount. Then `helm uninstall` runs, and the hook Job (completed by kwok) lets it go
through. The operator, when there is one, runs on this host with its own token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from chart_plugin import KOPF_FINALIZER, InstalledChart, OperatorProcess
from ingestion_contract.crd import API_VERSION, KIND

ROLLOUT = "ingestion-migration"
WAIT = 60.0


def poll(read: Any, done: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last: {value!r}"
        time.sleep(0.3)
        value = read()
    return value


def apply_rollout(chart: InstalledChart, finalizer: bool = False) -> None:
    """A rollout on the chart's objects; its Prometheus answers nothing (analysis errors)."""
    metadata: dict[str, Any] = {"name": ROLLOUT}
    if finalizer:  # what the operator puts on every rollout it handles
        metadata["finalizers"] = [KOPF_FINALIZER]
    body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata,
            "spec": {"analysis": {"prometheusUrl": "http://127.0.0.1:1"}}}  # fmt: skip
    chart.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))


def finalizers(chart: InstalledChart) -> list[str] | None:
    """The rollout's finalizers; None once it is gone."""
    answer = chart.kubectl("get", "ir", ROLLOUT, "-o", "json", check=False)
    if answer.returncode != 0:
        return None
    return list(json.loads(answer.stdout)["metadata"].get("finalizers") or [])


def run_hook_pod(chart: InstalledChart, workdir: Path, wait_seconds: int) -> str:
    """The pre-delete hook's Pod, run here as the release defines it; its output."""
    hooks = [d for d in yaml.safe_load_all(chart.helm("get", "hooks", chart.release).stdout) if d]
    by_kind = {d["kind"]: d for d in hooks}
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        chart.kubectl("apply", "-f", "-", input=yaml.safe_dump(by_kind[kind]))
    pod = by_kind["Job"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["script"]
    script = workdir / Path(container["command"][1]).relative_to(mount)
    script.write_text(by_kind["ConfigMap"]["data"][script.name])
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    env["ROLLOUT_NAMESPACE"] = chart.namespace  # the fieldRef metadata.namespace
    env["RELEASE_WAIT_SECONDS"] = str(wait_seconds)  # the test's wait, not the default 30 s
    token = chart.plane.kubeconfig_for_service_account(chart.namespace, pod["serviceAccountName"])
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, **env, "KUBECONFIG": str(token)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def left_in_namespace(chart: InstalledChart) -> list[str]:
    kinds = "deployments,services,serviceaccounts,configmaps,roles,rolebindings,jobs,ir"
    items = chart.get(kinds)["items"]
    names = [f"{i['kind']}/{i['metadata']['name']}" for i in items]
    return [n for n in names if n not in ("ConfigMap/kube-root-ca.crt", "ServiceAccount/default")]


def test_uninstall_with_a_running_operator_leaves_nothing_behind(
    installed_chart: InstalledChart, tmp_path: Path
) -> None:
    """Given the chart, its operator running with its token and a rollout it has put its
    finalizer on, when `helm uninstall` runs its pre-delete hook, then the hook deletes the
    rollout and the operator releases it (the hook had nothing to take off), helm removes
    every object of the release, and the CRD stays (Helm never deletes crds/)."""
    chart = installed_chart
    with OperatorProcess(chart, tmp_path / "operator.log") as operator:
        apply_rollout(chart)
        poll(lambda: finalizers(chart), lambda f: f == [KOPF_FINALIZER], "the operator's finalizer")
        output = run_hook_pod(chart, tmp_path, wait_seconds=30)
        print(operator.tail())
    assert f"deleting {chart.namespace}/{ROLLOUT}" in output
    assert "released" not in output  # the operator did it
    assert "still there: none" in output
    chart.helm("uninstall", chart.release, "--wait", "--timeout", "60s")
    assert left_in_namespace(chart) == []
    assert chart.plane.kubectl("get", "crd", "ingestionrollouts.ingestion.apexmemory.io").stdout


def test_uninstall_without_an_operator_takes_the_finalizer_off(
    installed_chart: InstalledChart, tmp_path: Path
) -> None:
    """Given a rollout carrying the operator's finalizer and no operator running, when the
    pre-delete hook runs, then after its wait it takes the finalizer off itself and the
    rollout is gone; `helm uninstall` then leaves nothing of the release."""
    chart = installed_chart
    apply_rollout(chart, finalizer=True)
    output = run_hook_pod(chart, tmp_path, wait_seconds=2)
    assert f"released {chart.namespace}/{ROLLOUT}: no operator took its finalizer off" in output
    assert finalizers(chart) is None
    chart.helm("uninstall", chart.release, "--wait", "--timeout", "60s")
    assert left_in_namespace(chart) == []


def test_without_the_hook_the_namespace_cannot_be_deleted(
    installed_chart: InstalledChart,
) -> None:
    """Given a rollout carrying the operator's finalizer, when the release is uninstalled
    without its hook (`--no-hooks`) and the namespace is deleted, then the rollout is still
    there and the server keeps the namespace Terminating, naming kopf's finalizer; taking
    the finalizer off (what the hook does) lets the namespace go. This is why the hook
    exists, and what README tells a user who skipped it."""
    chart = installed_chart
    apply_rollout(chart, finalizer=True)
    chart.helm("uninstall", chart.release, "--no-hooks", "--wait", "--timeout", "60s")
    assert finalizers(chart) == [KOPF_FINALIZER]
    chart.plane.kubectl("delete", "namespace", chart.namespace, "--wait=false")

    def stuck() -> str:
        status = json.loads(
            chart.plane.kubectl("get", "namespace", chart.namespace, "-o", "json").stdout
        )["status"]
        return " ".join(c["message"] for c in status.get("conditions", []))

    message = poll(stuck, lambda m: KOPF_FINALIZER in m, "the namespace's finalizer condition")
    assert f"Some content in the namespace has finalizers remaining: {KOPF_FINALIZER}" in message
    chart.kubectl("patch", "ir", ROLLOUT, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    poll(
        lambda: chart.plane.kubectl("get", "namespace", chart.namespace, check=False).returncode,
        lambda code: code == 1,
        "the namespace to be gone",
    )

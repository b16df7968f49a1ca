"""The demo's Kubernetes (ingestion_sandbox.demo.kube): the chart installed with helm on
the real control plane, the kubectl commands the demo prints working as printed, and its
kubelet following the worker Deployment's Pods. The emulator fallback is tested at the end.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from chart_plugin import release_finalizers
from ingestion_sandbox.demo import kube
from ingestion_sandbox.demo.cluster import FAULT_CONFIGMAP, NAMESPACE, Cluster, fault_json
from ingestion_sandbox.demo.options import DEFAULT_ROLLOUT, JUDGES, defaults_for
from ingestion_sandbox.demo.rollout import (
    RETRY_ANNOTATION,
    Kubectl,
    demo_rollout,
    names_of,
    write_rollout,
)
from ingestion_sandbox.servers.control_plane import ControlPlane

WAIT = 60.0


def the_demos_rollout(judge: str = "threshold") -> dict:
    base = yaml.safe_load(DEFAULT_ROLLOUT.read_text())
    return demo_rollout(base, defaults_for(judge), "http://p")


@pytest.fixture
def on_the_control_plane(control_plane: ControlPlane, tmp_path: Path) -> Iterator[kube.Kube]:
    """The chart installed in "default" as the demo installs it; uninstalled afterwards."""
    names = names_of(the_demos_rollout())
    values = kube.chart_values(names, 2, "127.0.0.1:7233", "http://127.0.0.1:9090")
    installed = kube.on_control_plane(control_plane, names, values, tmp_path, lambda _: None)
    yield installed
    release_finalizers(control_plane, NAMESPACE)
    control_plane.kubectl("delete", "ir", "--all", "-n", NAMESPACE, "--wait=false", check=False)
    control_plane.kubectl("delete", "configmap", FAULT_CONFIGMAP, "-n", NAMESPACE, check=False)
    control_plane.helm("uninstall", kube.RELEASE, "-n", NAMESPACE, "--no-hooks", check=False)


def story_commands(kubectl: Kubectl, rollout: dict, tmp_path: Path) -> list[str]:
    said: list[str] = []
    kubectl.say = said.append
    path = write_rollout(rollout, DEFAULT_ROLLOUT, tmp_path / "rollout.yaml")
    kubectl.apply(path, rollout)
    kubectl.set_fault(fault_json(0.5, 0.0))
    kubectl.retry("2026-01-01T00:00:00Z")
    return said


def wait_for_workers(cluster: Cluster, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while cluster.wanted_replicas() != count:
        assert time.monotonic() < deadline, f"never {count} Running worker Pods"
        time.sleep(0.2)


@pytest.mark.parametrize("judge", JUDGES)
def test_the_printed_kubectl_commands_work_on_the_control_plane(
    on_the_control_plane: kube.Kube, tmp_path: Path, judge: str
) -> None:
    """Given the demo's Kubernetes on the control plane (the chart installed with helm),
    when the demo's three kubectl commands run as printed (apply the rollout of either
    judge, validated by the server's CRD schema; patch the fault ConfigMap; annotate the
    rollout), then each took effect, and the routing is at 0% with 2 worker Pods Running,
    as the chart installed them."""
    k = on_the_control_plane
    rollout = the_demos_rollout(judge)
    kubectl = Kubectl(k.kubectl, k.admin_kubeconfig, k.cluster, print)
    kubectl.validate = k.validates
    said = story_commands(kubectl, rollout, tmp_path)
    commands = [line for line in said if line.startswith("$ kubectl")]
    assert len(commands) == 3
    assert all(f"--kubeconfig {k.admin_kubeconfig}" in line for line in commands)
    assert not any("--validate=false" in line for line in commands)
    assert any("ingestionrollout.ingestion.apexmemory.io/ingestion-migration created" in s
               for s in said)  # fmt: skip
    stored = k.cluster.rollout()
    assert stored is not None and stored["spec"]["stepDuration"] == "6s"
    assert stored["spec"]["analysis"] == rollout["spec"]["analysis"]  # judge, alpha: as sent
    assert stored["metadata"]["annotations"][RETRY_ANNOTATION] == "2026-01-01T00:00:00Z"
    assert json.loads(k.cluster.fault_text() or "{}") == {"failureRate": 0.5, "delaySeconds": 0.0}
    assert k.cluster.weight() == 0
    wait_for_workers(k.cluster, 2)
    shown = subprocess.run(
        [str(k.kubectl), "--kubeconfig", str(k.admin_kubeconfig), "get", "ir"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert shown.split()[:2] == ["NAME", "PHASE"] and "ingestion-migration" in shown


def test_the_kubelet_follows_the_deployments_running_pods(
    on_the_control_plane: kube.Kube, control_plane: ControlPlane
) -> None:
    """Given the chart's worker Deployment at 2 replicas, when it is scaled through its scale
    subresource (as the operator scales it) to 3 and then to 1, then the Pods the demo's
    kubelet must run (Running on kwok's Node, not terminating) follow: 3, then 1."""
    k = on_the_control_plane
    wait_for_workers(k.cluster, 2)
    for replicas in (3, 1):
        scale = json.dumps({"spec": {"replicas": replicas}})
        control_plane.kubectl(
            "patch", "deployment", k.cluster.names.deployment, "-n", NAMESPACE,
            "--subresource=scale", "--type=merge", "-p", scale,
        )  # fmt: skip
        wait_for_workers(k.cluster, replicas)
    k.cluster.set_deployment_status(replicas=9, ready=9)  # the controllers report, not the demo
    deadline = time.monotonic() + WAIT
    while (status := (k.cluster.deployment() or {}).get("status") or {}).get("replicas") != 1:
        assert status.get("replicas") != 9, status
        assert time.monotonic() < deadline, f"the controllers never reported 1 replica: {status}"
        time.sleep(0.2)
    assert status["availableReplicas"] == 1


@pytest.fixture
def on_the_emulator(tmp_path: Path) -> Iterator[kube.Kube]:
    names = names_of(the_demos_rollout())
    fallback = kube.on_emulator(names, 2, tmp_path, kubectl_on_path=None)
    yield fallback
    fallback.server.stop()


def test_on_the_emulator_without_kubectl_the_same_requests_go_through_the_api(
    on_the_emulator: kube.Kube, tmp_path: Path
) -> None:
    """The emulator is the demo's fallback on a machine without the control plane's
    binaries (so without the built kubectl either): there, each command is printed and the
    same request goes through the API instead; the kubelet follows spec.replicas and
    reports the Deployment's status itself (no controllers)."""
    k = on_the_emulator
    said = story_commands(Kubectl(None, k.admin_kubeconfig, k.cluster, print), the_demos_rollout(),
                          tmp_path)  # fmt: skip
    assert sum("kubectl is not installed" in line for line in said) == 3
    stored = k.cluster.rollout()
    assert stored is not None and stored["metadata"]["annotations"][RETRY_ANNOTATION]
    assert json.loads(k.cluster.fault_text() or "{}")["failureRate"] == 0.5
    assert k.cluster.weight() == 0 and k.cluster.wanted_replicas() == 2
    k.cluster.set_deployment_status(replicas=2, ready=1)
    deployment = k.cluster.deployment()
    assert deployment is not None
    assert deployment["status"] == {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1}

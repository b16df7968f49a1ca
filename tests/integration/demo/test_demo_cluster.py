"""The demo's control plane against the real Kubernetes API emulator: the kubectl commands
it prints work as printed, and without kubectl the same requests go through the API."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ingestion_sandbox.demo import cluster
from ingestion_sandbox.demo.cluster import FAULT_CONFIGMAP, FAULT_KEY, Cluster
from ingestion_sandbox.demo.options import DEFAULT_ROLLOUT, DemoOptions
from ingestion_sandbox.demo.rollout import (
    RETRY_ANNOTATION,
    Kubectl,
    demo_rollout,
    names_of,
    write_rollout,
)
from ingestion_sandbox.servers.services import KubeEmulator


@pytest.fixture
def sandbox_cluster(tmp_path: Path) -> Iterator[tuple[Cluster, Path, dict]]:
    """A fresh emulator set up as the demo sets it up (its own: the names are fixed)."""
    rollout = demo_rollout(yaml.safe_load(DEFAULT_ROLLOUT.read_text()), DemoOptions(), "http://p")
    names = names_of(rollout)
    with KubeEmulator() as kube:
        cluster.register_crd(kube)
        cluster.seed(kube, names, replicas=2)
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        yield Cluster(kube, names), kubeconfig, rollout


def story_commands(kubectl: Kubectl, rollout: dict, tmp_path: Path) -> None:
    path = write_rollout(rollout, DEFAULT_ROLLOUT, tmp_path / "rollout.yaml")
    kubectl.apply(path, rollout)
    kubectl.set_fault(cluster.fault_json(0.5, 0.0))
    kubectl.retry("2026-01-01T00:00:00Z")


def check_effects(c: Cluster) -> None:
    stored = c.rollout()
    assert stored is not None and stored["spec"]["stepDuration"] == "6s"
    assert stored["metadata"]["annotations"][RETRY_ANNOTATION] == "2026-01-01T00:00:00Z"
    assert json.loads(c.fault_text() or "{}") == {"failureRate": 0.5, "delaySeconds": 0.0}
    assert c.weight() == 0 and c.wanted_replicas() == 2


def test_the_printed_kubectl_commands_work_on_the_sandbox(
    sandbox_cluster: tuple[Cluster, Path, dict], tmp_path: Path, kubectl: str
) -> None:
    c, kubeconfig, rollout = sandbox_cluster
    said: list[str] = []
    story_commands(Kubectl(kubectl, kubeconfig, c, said.append), rollout, tmp_path)
    check_effects(c)
    commands = [line for line in said if line.startswith("$ kubectl")]
    assert len(commands) == 3
    assert all(f"--kubeconfig {kubeconfig}" in line for line in commands)
    assert any(
        "ingestionrollout.ingestion.apexmemory.io/ingestion-migration created" in s for s in said
    )


def test_without_kubectl_the_same_requests_go_through_the_api(
    sandbox_cluster: tuple[Cluster, Path, dict], tmp_path: Path
) -> None:
    c, kubeconfig, rollout = sandbox_cluster
    said: list[str] = []
    story_commands(Kubectl(None, kubeconfig, c, said.append), rollout, tmp_path)
    check_effects(c)
    assert sum("kubectl is not installed" in line for line in said) == 3


def test_events_and_the_deployment_status_as_the_demo_reads_and_writes_them(
    sandbox_cluster: tuple[Cluster, Path, dict],
) -> None:
    c, _, _ = sandbox_cluster
    c.set_deployment_status(replicas=2, ready=1)
    deployment = c.kube.get("apps/v1/deployments", "default", c.names.deployment)
    assert deployment is not None
    assert deployment["status"] == {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1}
    for index, reason in enumerate(("Started", "RolledBack")):
        c._request(
            "POST",
            "/api/v1/namespaces/default/events",
            {
                "metadata": {"name": f"e{index}", "namespace": "default"},
                "involvedObject": {"kind": "IngestionRollout", "name": c.names.rollout},
                "reason": reason,
                "message": reason.lower(),
                "type": "Normal",
            },
        )
    assert [e["reason"] for e in c.events()] == ["Started", "RolledBack"]
    c.patch_configmap(FAULT_CONFIGMAP, {FAULT_KEY: "{}"})
    assert c.fault_text() == "{}"


def test_kubectl_get_ir_shows_the_applied_rollout(
    sandbox_cluster: tuple[Cluster, Path, dict], tmp_path: Path, kubectl: str
) -> None:
    c, kubeconfig, rollout = sandbox_cluster
    Kubectl(kubectl, kubeconfig, c, lambda _: None).apply(
        write_rollout(rollout, DEFAULT_ROLLOUT, tmp_path / "r.yaml"), rollout
    )
    shown = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "get", "ir"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "ingestion-migration" in shown

"""The chart with the real helm CLI against a real kube-apiserver: template, install, upgrade.

`helm template` output is checked by the server itself (a server-side dry-run apply runs
admission: every built-in type's validation and the CRD's schema and CEL rules); `helm
install` is done as README says, with kwok's fake Node running the Pods, so Deployments
become available; `helm upgrade` rolls a changed value out while keeping what the operator
owns. Uninstall is in test_helm_uninstall.py, values.schema.json refusals in
test_values_schema_install.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_plugin import CHART, TEST_VALUES, InstalledChart, helm_chart, install, unavailable
from ingestion_sandbox.servers.common import ServiceUnavailable
from ingestion_sandbox.servers.control_plane import ControlPlane

REPO = Path(__file__).resolve().parents[3]
CRD_FILE = REPO / "crds" / "ingestionrollouts.yaml"
CRD_NAME = "ingestionrollouts.ingestion.apexmemory.io"
DEV_VALUES = yaml.safe_load((CHART / "values-dev.yaml").read_text())
# Everything optional the server can check: the Prometheus Operator's ServiceMonitor and
# PrometheusRule are left out (their CRDs are not installed here; unit tests check them).
DRY_RUN_VALUES = {
    "exampleRollout": {"enabled": True},
    "liveUpdate": {"enabled": True},
    "metrics": {"grafanaDashboard": {"enabled": True}},
    "operator": {"rbac": {"extraRoutingConfigMaps": ["other"]}},
}


def deployments(chart: InstalledChart) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in chart.get("deployments")["items"]}


def worker_replica_sets(chart: InstalledChart) -> set[str]:
    selector = "app.kubernetes.io/component=worker"
    return {rs["metadata"]["name"] for rs in chart.get("replicasets", "-l", selector)["items"]}


def wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def available(deployment: dict[str, Any]) -> bool:
    spec, status = deployment["spec"], deployment.get("status") or {}
    return bool(
        status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("availableReplicas") == spec["replicas"]
        and status.get("updatedReplicas") == spec["replicas"]
    )


@pytest.mark.parametrize(
    "layers",
    [pytest.param([], id="default"), pytest.param([DEV_VALUES, DRY_RUN_VALUES], id="dev-all")],
)
def test_rendered_chart_passes_the_servers_admission(
    control_plane: ControlPlane, kube_namespace: str, layers: list[dict[str, Any]]
) -> None:
    """Given `helm template` of the chart (default values; dev values with every optional
    object the server knows), when the manifests are applied server-side as a dry run, then
    the server admits every object (schema, defaulting, the CRD's rules for the example
    rollout) and reports each one as it would create it."""
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    control_plane.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}")
    values = helm_chart.merge_values(TEST_VALUES, {})
    for layer in layers:
        values = helm_chart.merge_values(values, layer)
    rendered = helm_chart.render(helm_chart.chart_values(values), release="ingestion",
                                 namespace=kube_namespace)  # fmt: skip
    answer = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=helm-check",
        "-f", "-", "-o", "name", input=rendered.text,
    )  # fmt: skip
    # "deployment.apps/ingestion-api" -> "deployment/ingestion-api"
    created = [f"{c.split('/')[0].split('.')[0]}/{c.split('/')[1]}" for c in answer.stdout.split()]
    expected = [f"{m.kind.lower()}/{m.name}" for m in rendered.manifests]
    assert sorted(created) == sorted(expected)
    kinds = {c.split("/")[0] for c in created}
    assert {"deployment", "role", "job"} <= kinds  # the uninstall hook's Job included
    assert ("ingestionrollout" in kinds) == bool(layers)  # the example, with dev-all


@pytest.fixture(scope="module")
def fresh_plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own that no test has put the CRD on (the session's
    has it from other tests), so that installing the CRD is helm's doing (~4 s to start)."""
    try:
        plane = ControlPlane()
    except ServiceUnavailable as exc:
        unavailable(str(exc))
        raise  # unreachable: skip/fail raise
    with plane:
        yield plane


def test_install_creates_the_crd_and_everything_becomes_available(
    fresh_plane: ControlPlane,
) -> None:
    """Given a cluster without the IngestionRollout CRD, when the chart is installed with
    `helm install --wait` as README says, then helm created the CRD from the chart's crds/
    (managed by helm, identical to crds/ingestionrollouts.yaml, Established), every
    Deployment is available on kwok's Node, the example rollout is admitted, and `kubectl get
    ir` prints the CRD's columns."""
    plane = fresh_plane
    assert plane.kubectl("get", "crd", CRD_NAME, check=False).returncode == 1
    plane.create_namespace("ingestion")
    chart = install(plane, "ingestion")
    crd = json.loads(
        plane.kubectl("get", "crd", CRD_NAME, "-o", "json", "--show-managed-fields").stdout
    )
    managers = {entry["manager"] for entry in crd["metadata"]["managedFields"]}
    established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    diff = plane.kubectl("diff", "--server-side", "-f", str(CRD_FILE), check=False)
    assert "helm" in managers, managers
    assert established["Established"] == "True"
    assert diff.returncode == 0, diff.stdout  # the server holds exactly the repository's CRD
    found = deployments(chart)
    assert set(found) == {
        chart.name("api"), chart.name("operator"), chart.worker_deployment,
    }  # fmt: skip
    assert all(available(d) for d in found.values()), {n: d["status"] for n, d in found.items()}
    example = yaml.safe_load((REPO / "examples" / "rollout.yaml").read_text())
    example["metadata"]["namespace"] = chart.namespace
    chart.kubectl("apply", "-f", "-", input=yaml.safe_dump(example))
    header = chart.kubectl("get", "ir").stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "WEIGHT", "STEP", "TARGET", "LAST", "VERDICT", "AGE"]
    status = chart.helm("status", chart.release, "-o", "json")
    assert json.loads(status.stdout)["info"]["status"] == "deployed"


def test_upgrade_rolls_out_a_change_and_keeps_what_the_operator_owns(
    installed_chart: InstalledChart, tmp_path: Path
) -> None:
    """Given an install where the operator has moved traffic to 50% and scaled the worker to
    3 replicas, when `helm upgrade --reuse-values` changes a worker setting (an environment
    variable), then the worker Deployment's generation moves, a new ReplicaSet rolls out
    and becomes available, the new value is in the pods' template, and the live routing
    percentage (50) and worker replicas (3) are kept (`lookup`, as README promises)."""
    chart = installed_chart
    key = chart.routing_key
    chart.kubectl("patch", "configmap", chart.routing_configmap, "--type=merge",
                  "-p", json.dumps({"data": {key: "50"}}))  # fmt: skip
    chart.kubectl("scale", "deployment", chart.worker_deployment, "--replicas=3")
    wait_until(lambda: available(deployments(chart)[chart.worker_deployment]), "3 workers")
    before = deployments(chart)[chart.worker_deployment]
    old_sets = worker_replica_sets(chart)

    values_file = tmp_path / "upgrade.yaml"
    values_file.write_text(yaml.safe_dump({"worker": {"maxConcurrentActivities": 8}}))
    chart.helm("upgrade", chart.release, str(CHART), "--reuse-values",
               "-f", str(values_file), "--wait", "--timeout", "120s")  # fmt: skip

    after = deployments(chart)[chart.worker_deployment]
    wait_until(lambda: available(deployments(chart)[chart.worker_deployment]), "the rollout")
    env = {e["name"]: e.get("value") for e in
           after["spec"]["template"]["spec"]["containers"][0]["env"]}  # fmt: skip
    assert env["MAX_CONCURRENT_ACTIVITIES"] == "8"
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert worker_replica_sets(chart) - old_sets, "no new ReplicaSet"
    assert after["spec"]["replicas"] == 3
    routing = chart.get("configmap", chart.routing_configmap)
    assert routing["data"] == {key: "50"}
    history = json.loads(chart.helm("history", chart.release, "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]

"""The local control plane is a real Kubernetes: its version, controllers, RBAC and admission.

These tests are the ground the operator's and the chart's control-plane tests stand on:
if one fails, the failure is in the control plane fixture (or a binary), not in the code
under test. Each test works in a namespace of its own on the session's control plane.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from ingestion_sandbox.servers.control_plane import NODE_NAME, ControlPlane

REPO = Path(__file__).resolve().parents[3]
CRD = REPO / "crds" / "ingestionrollouts.yaml"
EXAMPLE = REPO / "examples" / "rollout.yaml"
CRD_NAME = "ingestionrollouts.ingestion.apexmemory.io"


def pinned_kubernetes_version() -> str:
    """KUBERNETES_VERSION from hack/control-plane/versions.env (what build.sh built)."""
    for line in (REPO / "hack" / "control-plane" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("KUBERNETES_VERSION not in versions.env")


def get_json(plane: ControlPlane, *args: str, kubeconfig: Path | None = None) -> Any:
    return json.loads(plane.kubectl("get", *args, "-o", "json", kubeconfig=kubeconfig).stdout)


def apply(plane: ControlPlane, manifest: dict[str, Any], *args: str) -> None:
    plane.kubectl("apply", *args, "-f", "-", input=yaml.safe_dump(manifest))


def test_server_reports_the_pinned_kubernetes_version(control_plane: ControlPlane) -> None:
    """Given the control plane built from versions.env, when kubectl asks the server for its
    version, then the server reports exactly the pinned Kubernetes version (v1.35.4)."""
    answer = json.loads(control_plane.kubectl("version", "-o", "json").stdout)

    assert answer["serverVersion"]["gitVersion"] == pinned_kubernetes_version() == "v1.35.4"
    assert control_plane.version == "v1.35.4"  # GET /version with the admin certificate


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    container = {"name": "app", "image": "registry.invalid/apex/app:1"}  # kwok pulls nothing
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def wait_available(plane: ControlPlane, namespace: str, name: str, replicas: int) -> None:
    plane.kubectl(
        "wait", f"deployment/{name}", "-n", namespace, "--timeout=60s",
        f"--for=jsonpath={{.status.availableReplicas}}={replicas}",
    )  # fmt: skip


def running_pods_on_the_fake_node(plane: ControlPlane, namespace: str, app: str) -> int:
    pods = get_json(plane, "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return sum(
        1
        for pod in pods
        if pod["status"].get("phase") == "Running"
        and pod["spec"].get("nodeName") == NODE_NAME
        and "deletionTimestamp" not in pod["metadata"]
    )


def test_deployment_runs_its_pods_on_the_fake_node_and_scales(
    control_plane: ControlPlane, kube_namespace: str
) -> None:
    """Given a Deployment of 2 replicas, when the controllers, the scheduler and kwok have
    done their work, then 2 Pods run on the fake Node and 2 replicas are available; when it
    is scaled to 3 through the scale subresource, then 3 are available and running."""
    ns = kube_namespace
    apply(control_plane, deployment("web", 2), "-n", ns)

    wait_available(control_plane, ns, "web", 2)
    assert running_pods_on_the_fake_node(control_plane, ns, "web") == 2

    control_plane.kubectl(
        "patch", "deployment", "web", "-n", ns, "--subresource=scale", "--type=merge",
        "-p", '{"spec": {"replicas": 3}}',
    )  # fmt: skip
    scale = get_json(control_plane, "deployment", "web", "-n", ns, "--subresource=scale")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3

    wait_available(control_plane, ns, "web", 3)
    assert (
        get_json(control_plane, "deployment", "web", "-n", ns)["status"]["availableReplicas"] == 3
    )
    assert running_pods_on_the_fake_node(control_plane, ns, "web") == 3


def test_service_account_gets_exactly_what_its_role_grants(
    control_plane: ControlPlane, kube_namespace: str
) -> None:
    """Given a ServiceAccount whose Role grants only `get` on ConfigMaps, when it acts with a
    TokenRequest token, then it can get a ConfigMap but is Forbidden to list or patch one."""
    ns = kube_namespace
    kubectl = control_plane.kubectl
    kubectl("create", "serviceaccount", "reader", "-n", ns)
    kubectl("create", "role", "read-configmaps", "--verb=get", "--resource=configmaps", "-n", ns)
    kubectl(
        "create", "rolebinding", "reader", "--role=read-configmaps",
        f"--serviceaccount={ns}:reader", "-n", ns,
    )  # fmt: skip
    kubectl("create", "configmap", "settings", "--from-literal=percentage=10", "-n", ns)
    reader = control_plane.kubeconfig_for_service_account(ns, "reader")

    config_map = get_json(control_plane, "configmap", "settings", "-n", ns, kubeconfig=reader)
    listed = kubectl("get", "configmaps", "-n", ns, kubeconfig=reader, check=False)
    patched = kubectl(
        "patch", "configmap", "settings", "-n", ns, "--type=merge",
        "-p", '{"data": {"percentage": "100"}}', kubeconfig=reader, check=False,
    )  # fmt: skip

    assert config_map["data"] == {"percentage": "10"}
    user = f'User "system:serviceaccount:{ns}:reader"'
    assert listed.returncode == 1
    assert "(Forbidden)" in listed.stderr
    assert f'{user} cannot list resource "configmaps"' in listed.stderr
    assert patched.returncode == 1
    assert "(Forbidden)" in patched.stderr
    assert f'{user} cannot patch resource "configmaps"' in patched.stderr
    unchanged = get_json(control_plane, "configmap", "settings", "-n", ns)
    assert unchanged["data"] == {"percentage": "10"}


def install_crd(plane: ControlPlane) -> None:
    plane.kubectl("apply", "--server-side", "-f", str(CRD))
    plane.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")


def rollout(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "ingestion.apexmemory.io/v1alpha1",
        "kind": "IngestionRollout",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_crd_schema_rejects_invalid_rollouts_with_its_own_messages(
    control_plane: ControlPlane, kube_namespace: str
) -> None:
    """Given the project's CRD applied server-side and Established, when rollouts with a
    negative targetPercentage or decreasing steps are applied, then the apiserver rejects
    them with the schema's and the CEL rule's messages, and stores neither."""
    install_crd(control_plane)
    ns = kube_namespace

    negative = control_plane.kubectl(
        "apply", "-n", ns, "-f", "-", check=False,
        input=yaml.safe_dump(rollout("negative", {"targetPercentage": -5})),
    )  # fmt: skip
    decreasing = control_plane.kubectl(
        "apply", "-n", ns, "-f", "-", check=False,
        input=yaml.safe_dump(rollout("decreasing", {"steps": [50, 10]})),
    )  # fmt: skip

    assert negative.returncode == 1
    assert 'The IngestionRollout "negative" is invalid' in negative.stderr
    assert (
        "spec.targetPercentage: Invalid value: -5: "
        "spec.targetPercentage in body should be greater than or equal to 0"
    ) in negative.stderr
    assert decreasing.returncode == 1
    assert "steps must be strictly increasing (e.g. [10, 50, 100])" in decreasing.stderr
    stored = get_json(control_plane, "ingestionrollouts", "-n", ns)["items"]
    assert stored == []


def test_crd_accepts_the_example_and_defaults_what_it_leaves_out(
    control_plane: ControlPlane, kube_namespace: str
) -> None:
    """Given the CRD installed, when examples/rollout.yaml is applied as written and again
    with `spec: {}`, then both are accepted, nothing of the example is pruned, and the
    empty spec reads back with the values the example writes out (its comment: "`spec: {}`
    means exactly the same")."""
    install_crd(control_plane)
    ns = kube_namespace
    example = yaml.safe_load(EXAMPLE.read_text())
    example["metadata"]["namespace"] = ns

    apply(control_plane, example)
    apply(control_plane, rollout("defaults", {}), "-n", ns)

    written = get_json(control_plane, "ingestionrollout", example["metadata"]["name"], "-n", ns)
    defaulted = get_json(control_plane, "ingestionrollout", "defaults", "-n", ns)["spec"]
    assert contains(written["spec"], example["spec"])  # accepted as written: nothing pruned
    assert defaulted["targetPercentage"] == 100
    assert defaulted["stepDuration"] == "10m"
    assert defaulted["analysis"]["thresholds"]["maxErrorRate"] == 0.05
    # The empty spec is defaulted to exactly what the example writes out, except for the
    # three optional fields without a default (written out empty in the example).
    expected = copy.deepcopy(written["spec"])
    assert expected.pop("stepOverrides") == []
    assert expected["analysis"].pop("queries") == {}
    assert expected["analysis"].pop("metricLabels") == {}
    assert defaulted == expected


def contains(actual: Any, expected: Any) -> bool:
    """True when every field of `expected` is in `actual` with the same value (recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in expected.items()
        )
    return bool(actual == expected)

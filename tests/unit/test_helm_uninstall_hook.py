"""The chart's pre-delete hook, rendered by `helm template`: a Job that runs
files/uninstall_rollouts.py with a ServiceAccount of its own, all of it only while
`helm uninstall` runs. What the script does on a real server (with and without a running
operator) is in tests/integration/helm/test_helm_uninstall.py.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hack_modules import load_hack

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "helm" / "apex-ingestion-rollout" / "files" / "uninstall_rollouts.py"
NAME = "test-release-ingestion-uninstall"

helm = load_hack("helm_chart")


@pytest.fixture(scope="module")
def hook(helm_cli: str) -> dict[str, Any]:
    """The uninstall hook's objects, by kind, in both operator modes."""
    rendered = {
        mode: helm.render(helm.chart_values({"operator": {"watchAllNamespaces": all_ns}}))
        for mode, all_ns in (("single", False), ("all", True))
    }
    return {
        mode: {m.kind: m.body for m in r.manifests if m.source == "templates/uninstall-hook.yaml"}
        for mode, r in rendered.items()
    }


def test_every_hook_object_exists_only_while_uninstall_runs(hook: dict[str, Any]) -> None:
    # Given the hook's objects / Then each is a pre-delete hook, deleted once the hook succeeded,
    # and the Job comes after the ServiceAccount, its RBAC and its script
    for mode, objects in hook.items():
        assert set(objects) == {"ServiceAccount", "Role" if mode == "single" else "ClusterRole",
                                "RoleBinding" if mode == "single" else "ClusterRoleBinding",
                                "ConfigMap", "Job"}  # fmt: skip
        for kind, body in objects.items():
            annotations = body["metadata"]["annotations"]
            assert annotations["helm.sh/hook"] == "pre-delete", (mode, kind)
            assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"], (mode, kind)
            weight = int(annotations["helm.sh/hook-weight"])
            assert (weight == 0) if kind == "Job" else (weight < 0), (mode, kind)


def test_the_job_runs_the_charts_script_with_the_hooks_account(hook: dict[str, Any]) -> None:
    objects = hook["single"]
    pod = objects["Job"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # The script in the ConfigMap is files/uninstall_rollouts.py, byte for byte
    assert objects["ConfigMap"]["data"]["uninstall_rollouts.py"] == SCRIPT.read_text().rstrip("\n")
    # and the Job runs it from where the ConfigMap is mounted
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["script"]
    assert container["command"] == ["python", f"{mount}/uninstall_rollouts.py"]
    assert pod["volumes"] == [{"name": "script", "configMap": {"name": NAME}}]
    assert pod["serviceAccountName"] == objects["ServiceAccount"]["metadata"]["name"] == NAME
    assert pod["restartPolicy"] == "Never"


def test_the_hook_covers_the_namespaces_the_operator_watches(hook: dict[str, Any]) -> None:
    def namespace_env(mode: str) -> dict[str, Any]:
        container = hook[mode]["Job"]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e for e in container["env"]}["ROLLOUT_NAMESPACE"]

    # Its own namespace for a namespaced operator; every namespace for a cluster-wide one
    assert namespace_env("single")["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert namespace_env("all")["value"] == ""


def test_the_script_removes_the_finalizer_the_operator_puts() -> None:
    # The operator keeps kopf's default finalizer; the script names the same one
    import kopf

    tree = ast.parse(SCRIPT.read_text())
    (value,) = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["KOPF_FINALIZER"]
        and isinstance(node.value, ast.Constant)
    ]
    assert value == kopf.OperatorSettings().persistence.finalizer

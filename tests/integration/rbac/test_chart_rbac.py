"""RBAC as users get it: the chart's ServiceAccounts, after `helm install`, against a real
kube-apiserver with RBAC authorization.

The operator and the API run with TokenRequest tokens of the ServiceAccounts the chart
creates, so each call here is made with exactly what the chart grants. The drift test
(tests/unit/test_rbac_drift.py) shows the rules files match the code; these tests show the
rendered rules do what the code needs on a real server, and nothing more, including the
resourceNames rules, which the server applies to a list or watch only when it selects the
name with a field selector.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from chart_plugin import InstallChart, InstalledChart, helm_chart
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import ConfigMapRoutingSource
from ingestion_contract.crd import GROUP, PLURAL, VERSION

ROLLOUT = "rbac-check"


def user(chart: InstalledChart, account: str) -> str:
    return f'User "system:serviceaccount:{chart.namespace}:{chart.name(account)}"'


def forbidden(answer: Any, message: str) -> bool:
    """kubectl failed with the server's Forbidden error carrying `message`."""
    return bool(
        answer.returncode == 1 and "(Forbidden)" in answer.stderr and message in answer.stderr
    )


@pytest.fixture(scope="module")
def rollout(module_chart: InstalledChart) -> str:
    """A rollout (as admin) for the operator's token to list, watch and patch."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "IngestionRollout",
            "metadata": {"name": ROLLOUT}, "spec": {}}  # fmt: skip
    module_chart.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
    return ROLLOUT


def test_operator_token_makes_every_call_the_operator_makes(
    module_chart: InstalledChart, rollout: str
) -> None:
    """Given the chart installed and the operator ServiceAccount's token, when it makes each
    call the operator makes, as its code makes them (kube.py with the kubernetes client;
    kopf's list, watch, patches, status and Events), then the server allows every one."""
    chart, ns = module_chart, module_chart.namespace
    client = kubernetes.config.new_client_from_config(config_file=str(chart.operator_kubeconfig))
    core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)
    crds = kubernetes.client.ApiextensionsV1Api(client)
    merge = {"_content_type": "application/merge-patch+json"}
    event = {
        "metadata": {"generateName": "rbac-"},
        "involvedObject": {"kind": "IngestionRollout", "name": rollout, "namespace": ns},
        "reason": "RbacCheck", "message": "posted with the operator token", "type": "Normal",
    }  # fmt: skip
    calls: dict[str, Callable[[], Any]] = {
        "get configmap": lambda: core.read_namespaced_config_map(chart.routing_configmap, ns),
        "patch configmap": lambda: core.patch_namespaced_config_map(
            chart.routing_configmap, ns, {"data": {chart.routing_key: "0"}}, **merge
        ),
        "get deployment": lambda: apps.read_namespaced_deployment(chart.worker_deployment, ns),
        "patch deployments/scale": lambda: apps.patch_namespaced_deployment_scale(
            chart.worker_deployment, ns, {"spec": {"replicas": 1}}, **merge
        ),
        "list ingestionrollouts": lambda: custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL
        ),
        "watch ingestionrollouts": lambda: list(
            custom.list_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, watch=True, timeout_seconds=1, _preload_content=False
            )
        ),
        "patch ingestionrollouts": lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, rollout, {"metadata": {"annotations": {"rbac": "ok"}}}
        ),
        "patch ingestionrollouts/status": lambda: custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, rollout, {"status": {"message": "operator token"}}
        ),
        "create events": lambda: core.create_namespaced_event(ns, event),
        "list customresourcedefinitions": lambda: crds.list_custom_resource_definition(),
        "list namespaces": lambda: core.list_namespace(),
    }
    refused = {}
    for what, call in calls.items():
        try:
            call()
        except kubernetes.client.ApiException as exc:
            refused[what] = f"{exc.status} {exc.reason}"
    assert refused == {}
    written = chart.get("ingestionrollout", rollout)
    assert written["status"]["message"] == "operator token"
    assert written["metadata"]["annotations"]["rbac"] == "ok"


def test_operator_token_reaches_nothing_else(module_chart: InstalledChart, rollout: str) -> None:
    """Given the operator's token, when it reaches past its rules (another ConfigMap, a
    Secret, deleting a rollout, scaling another Deployment), then the server refuses each
    with its Forbidden message naming the operator's ServiceAccount."""
    chart, config = module_chart, module_chart.operator_kubeconfig
    who = user(chart, "operator")
    kubectl = chart.plane.kubectl
    other = kubectl("-n", chart.namespace, "get", "configmap", "kube-root-ca.crt",
                    kubeconfig=config, check=False)  # fmt: skip
    secrets = kubectl("-n", chart.namespace, "get", "secrets", kubeconfig=config, check=False)
    delete = kubectl("-n", chart.namespace, "delete", "ingestionrollout", rollout,
                     kubeconfig=config, check=False)  # fmt: skip
    scale = kubectl("-n", chart.namespace, "scale", "deployment", chart.name("api"),
                    "--replicas=3", kubeconfig=config, check=False)  # fmt: skip
    assert forbidden(other, f'{who} cannot get resource "configmaps"'), other.stderr
    assert forbidden(secrets, f'{who} cannot list resource "secrets"'), secrets.stderr
    assert forbidden(delete, f'{who} cannot delete resource "ingestionrollouts"'), delete.stderr
    assert forbidden(scale, f"{who} cannot"), scale.stderr


def test_api_token_reads_the_routing_configmap_by_name_only(module_chart: InstalledChart) -> None:
    """Given the API's token and its rule (list/watch, resourceNames: the routing ConfigMap),
    when it lists ConfigMaps with and without a metadata.name field selector, then the server
    allows the selected list only: resourceNames cover a list only when it names the object.
    And it may not get the ConfigMap (no `get` granted) or list another one by name."""
    chart, config = module_chart, module_chart.api_kubeconfig
    who = user(chart, "api")
    kubectl = chart.plane.kubectl
    ns = ("-n", chart.namespace)
    selector = f"--field-selector=metadata.name={chart.routing_configmap}"
    by_name = kubectl(*ns, "get", "configmaps", selector, "-o", "json",
                      kubeconfig=config, check=False)  # fmt: skip
    unselected = kubectl(*ns, "get", "configmaps", kubeconfig=config, check=False)
    other = kubectl(*ns, "get", "configmaps", "--field-selector=metadata.name=kube-root-ca.crt",
                    kubeconfig=config, check=False)  # fmt: skip
    direct = kubectl(
        *ns, "get", "configmap", chart.routing_configmap, kubeconfig=config, check=False
    )
    assert by_name.returncode == 0, by_name.stderr
    assert [i["metadata"]["name"] for i in json.loads(by_name.stdout)["items"]] == [
        chart.routing_configmap
    ]
    assert forbidden(unselected, f'{who} cannot list resource "configmaps"'), unselected.stderr
    assert forbidden(other, f'{who} cannot list resource "configmaps"'), other.stderr
    assert forbidden(direct, f'{who} cannot get resource "configmaps"'), direct.stderr


async def test_api_routing_watch_runs_on_the_api_token(module_chart: InstalledChart) -> None:
    """Given the chart's routing ConfigMap at 0% and the API's token, when the API's routing
    source starts and the percentage is patched to 30 (as the operator would), then the
    source is ready and applies 30: list and watch both pass RBAC."""
    chart = module_chart
    source = ConfigMapRoutingSource(
        chart.namespace, chart.routing_configmap, chart.routing_key,
        str(chart.api_kubeconfig), RoutingConfig(percentage=99),
    )  # fmt: skip
    await source.start()
    try:
        assert source.ready and source.current.percentage == 0
        core = kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config(config_file=str(chart.plane.kubeconfig))
        )
        patch = {"data": {chart.routing_key: "30"}}
        core.patch_namespaced_config_map(chart.routing_configmap, chart.namespace, patch)
        for _ in range(500):
            if source.current.percentage == 30:
                break
            await asyncio.sleep(0.01)
        assert source.current.percentage == 30
    finally:
        await source.stop()
        core.patch_namespaced_config_map(
            chart.routing_configmap, chart.namespace, {"data": {chart.routing_key: "0"}}
        )


def without_verb(rules_file: Path, resource: str, verb: str) -> None:
    """Remove `verb` from the rule granting `resource` in a copy's rules file."""
    rules = yaml.safe_load(rules_file.read_text())
    (rule,) = [r for r in rules["rules"] if resource in r["resources"]]
    assert verb in rule["verbs"]
    rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    rules_file.write_text(yaml.safe_dump(rules, sort_keys=False))


def test_a_rule_without_a_verb_is_a_403_for_the_operator(
    install_chart: InstallChart, tmp_path: Path
) -> None:
    """Given a copy of the chart whose operator rules lack `patch` on the routing ConfigMap,
    installed with helm, when the operator's token patches the percentage (what
    kube.write_percentage does), then the server answers 403 with its own message, and the
    percentage is unchanged; a `get` of it (still granted) works."""
    copy = helm_chart.chart_copy(tmp_path)
    without_verb(copy / "files" / "operator-rbac.yaml", "configmaps", "patch")
    chart = install_chart(chart=copy)
    config = chart.operator_kubeconfig
    kubectl = chart.plane.kubectl
    ns = ("-n", chart.namespace)
    patched = kubectl(*ns, "patch", "configmap", chart.routing_configmap, "--type=merge",
                      "-p", json.dumps({"data": {chart.routing_key: "100"}}),
                      kubeconfig=config, check=False)  # fmt: skip
    read = kubectl(*ns, "get", "configmap", chart.routing_configmap, kubeconfig=config, check=False)
    expected = (
        f'Error from server (Forbidden): configmaps "{chart.routing_configmap}" is forbidden: '
        f'{user(chart, "operator")} cannot patch resource "configmaps" in API group "" '
        f'in the namespace "{chart.namespace}"'
    )
    assert patched.returncode == 1 and expected in patched.stderr, patched.stderr
    assert read.returncode == 0, read.stderr
    assert chart.get("configmap", chart.routing_configmap)["data"] == {chart.routing_key: "0"}

"""RBAC and code cannot drift apart: what the chart grants is exactly what the code uses.

The granted side is the chart's rules files (helm/apex-ingestion-rollout/files/*-rbac.yaml),
which the Role templates render as they are (checked here through Helm's own rendering).
The used side is derived from the processes' source (and the uninstall hook's script,
files/uninstall_rollouts.py) by hack/rbac_usage.py: kubernetes
client calls mapped through the client's own endpoint definitions, kopf handlers, status
writes and Events, and what kopf itself observes. Both directions fail: a verb the code
uses without a grant, and a grant nothing uses (least privilege).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack_modules import load_hack

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "apex-ingestion-rollout"
RULES = {
    "operator": CHART / "files/operator-rbac.yaml",
    "api": CHART / "files/api-rbac.yaml",
    "uninstall": CHART / "files/uninstall-rbac.yaml",
}
PROCESSES = list(RULES)
MODES = ("singleNamespace", "allNamespaces")


rbac = load_hack("rbac_usage")
helm = load_hack("helm_chart")


def rules(process: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULES[process].read_text())["rules"])


def granted(process: str, mode: str) -> dict[Any, str]:
    """Permission -> the rule's `why`, for one operator mode."""
    found = {}
    for rule in rules(process):
        if rule.get("onlyWhen") not in (None, mode):
            continue
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    found[rbac.Permission(rule["scope"], group, resource, verb)] = rule["why"]
    return found


def listing(items: dict[Any, Any]) -> str:
    return "\n".join(f"  {permission}: {detail}" for permission, detail in sorted(items.items()))


@pytest.fixture(scope="module")
def used() -> dict[str, Any]:
    found = {process: rbac.uses(process) for process in ("operator", "api", "worker")}
    return found | {"uninstall": rbac.uses_in_file(rbac.UNINSTALL_HOOK)}


# --------------------------------------------------------------------------- both directions


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("process", PROCESSES)
def test_code_uses_nothing_the_chart_does_not_grant(
    used: dict[str, Any], process: str, mode: str
) -> None:
    # Given what the process's code calls, and what its rules file grants
    needed = rbac.permissions(used[process], mode)
    allowed = granted(process, mode)
    # Then every call is granted
    missing = {p: "; ".join(origins) for p, origins in needed.items() if p not in allowed}
    assert not missing, (
        f"the {process} calls the Kubernetes API without a grant ({mode}); add these to "
        f"{RULES[process].relative_to(REPO)}:\n{listing(missing)}"
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("process", PROCESSES)
def test_chart_grants_nothing_the_code_does_not_use(
    used: dict[str, Any], process: str, mode: str
) -> None:
    needed = rbac.permissions(used[process], mode)
    unused = {p: why for p, why in granted(process, mode).items() if p not in needed}
    assert not unused, (
        f"{RULES[process].relative_to(REPO)} grants what the {process} never uses ({mode}); "
        f"least privilege: remove it:\n{listing(unused)}"
    )


@pytest.mark.parametrize("process", PROCESSES)
def test_lists_and_watches_under_resource_names_select_by_name(
    used: dict[str, Any], process: str
) -> None:
    # Given the rules that grant list or watch only on named objects (resourceNames)
    named = {
        rbac.Permission(rule["scope"], group, resource, verb)
        for rule in rules(process)
        if "names" in rule
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if verb in ("list", "watch")
    }
    # Then every call needing one passes a field selector: the API server allows such a
    # list or watch only with fieldSelector=metadata.name=<a granted name>
    unselected = [u.origin for u in used[process] if u.permission in named and not u.field_selector]
    assert not unselected, f"list/watch under resourceNames without field_selector: {unselected}"


def test_worker_needs_no_kubernetes_api(used: dict[str, Any]) -> None:
    # The worker's pods carry no token (automountServiceAccountToken: false), so its code
    # must not call the API at all.
    assert used["worker"] == [], [str(u.permission) for u in used["worker"]]


# --------------------------------------------------------------------------- rendered = file


def expected_rules(process: str, scope: str, mode: str, names: dict[str, list[str]]) -> list[Any]:
    result = []
    for rule in rules(process):
        if rule["scope"] != scope or rule.get("onlyWhen") not in (None, mode):
            continue
        rendered = {k: rule[k] for k in ("apiGroups", "resources")}
        if "names" in rule:
            rendered["resourceNames"] = names[rule["names"]]
        rendered["verbs"] = rule["verbs"]
        result.append(rendered)
    return result


@pytest.mark.parametrize("mode", MODES)
def test_rendered_roles_are_exactly_the_rules_files(mode: str, helm_cli: str) -> None:
    # Given the chart rendered by Helm for the mode
    all_namespaces = mode == "allNamespaces"
    rendered = helm.render(helm.chart_values({"operator": {"watchAllNamespaces": all_namespaces}}))
    names = {
        "routingConfigMap": ["ingestion-routing"],
        "routingConfigMaps": ["ingestion-routing"],
        "workerDeployments": ["ingestion-temporal-worker"],
    }
    prefix = "test-release-ingestion"
    # Cluster-scoped objects also carry the release namespace (two releases never collide)
    cluster_suffix = f"-{helm.NAMESPACE}"
    operator_name = f"{prefix}-operator" + (cluster_suffix if all_namespaces else "")
    discovery_name = f"{prefix}-operator-discovery{cluster_suffix}"
    namespaced_kind = "ClusterRole" if all_namespaces else "Role"
    # Then the operator's Role (ClusterRole), its cluster role and the API's Role hold
    # exactly the rules files' rules, in order
    operator = rendered.one(namespaced_kind, operator_name)["rules"]
    assert operator == expected_rules("operator", "namespace", mode, names)
    discovery = rendered.one("ClusterRole", discovery_name)["rules"]
    assert discovery == expected_rules("operator", "cluster", mode, names)
    api = rendered.one("Role", f"{prefix}-api")["rules"]
    assert api == expected_rules("api", "namespace", mode, names)
    uninstall_name = f"{prefix}-uninstall" + (cluster_suffix if all_namespaces else "")
    uninstall = rendered.one(namespaced_kind, uninstall_name)["rules"]
    assert uninstall == expected_rules("uninstall", "namespace", mode, names)
    # And the bindings give them to the processes' service accounts
    for kind, name, account in [
        ("ClusterRoleBinding" if all_namespaces else "RoleBinding", operator_name, "operator"),
        ("ClusterRoleBinding", discovery_name, "operator"),
        ("RoleBinding", f"{prefix}-api", "api"),
        ("ClusterRoleBinding" if all_namespaces else "RoleBinding", uninstall_name, "uninstall"),
    ]:
        binding = rendered.one(kind, name)
        assert binding["roleRef"]["name"] == name
        assert [s["name"] for s in binding["subjects"]] == [f"{prefix}-{account}"]
    deployments = {
        d.name: d.body["spec"]["template"]["spec"] for d in rendered.of_kind("Deployment")
    }
    assert deployments[f"{prefix}-operator"]["serviceAccountName"] == f"{prefix}-operator"
    assert deployments[f"{prefix}-api"]["serviceAccountName"] == f"{prefix}-api"


def test_rules_files_say_why_for_every_rule() -> None:
    for process in RULES:
        for rule in rules(process):
            assert rule.get("why"), f"{process}: {rule}"
            assert rule["scope"] in ("namespace", "cluster"), f"{process}: {rule}"


# --------------------------------------------------------------------------- the derivation


def derived(source: str) -> set[str]:
    return {str(use.permission) for use in rbac.uses_in_source(source)}


def test_client_calls_map_through_the_clients_own_endpoints() -> None:
    # Given calls the operator does not make today
    source = """
from kubernetes import client, watch
GROUP, PLURAL = "ingestion.apexmemory.io", "ingestionrollouts"
def f(autoscaling, core, custom, ns, name, body):
    autoscaling.patch_namespaced_horizontal_pod_autoscaler(name, ns, body)
    core.list_namespaced_config_map(ns, watch=True)
    core.read_namespace(name)
    watch.Watch().stream(core.list_namespaced_pod, ns)
    custom.patch_namespaced_custom_object_status(GROUP, "v1alpha1", ns, PLURAL, name, body)
    client.AppsV1Api().delete_collection_namespaced_deployment(ns)
    client.CoreV1Api().create_namespaced_event(ns, body)
"""
    # Then each maps to the permission the API server checks
    assert derived(source) == {
        "patch horizontalpodautoscalers (autoscaling, namespace-scoped)",
        "watch configmaps (core, namespace-scoped)",
        "get namespaces (core, cluster-scoped)",
        "watch pods (core, namespace-scoped)",
        "patch ingestionrollouts/status (ingestion.apexmemory.io, namespace-scoped)",
        "deletecollection deployments (apps, namespace-scoped)",
        "create events (core, namespace-scoped)",
    }


def test_other_libraries_calls_are_not_taken_for_kubernetes_calls() -> None:
    # boto3 and friends have list_/create_/delete_ methods too; on receivers not typed as a
    # kubernetes client, only the kubernetes client's own method names count
    source = """
def f(s3, storage):
    s3.list_objects_v2(Bucket="b")
    s3.delete_object(Bucket="b", Key="k")
    storage.create_bucket(Bucket="b")
"""
    assert derived(source) == set()


def test_kopf_handlers_status_and_events_are_derived() -> None:
    source = """
import kopf
GROUP, VERSION, PLURAL = "ingestion.apexmemory.io", "v1alpha1", "ingestionrollouts"

@kopf.on.startup()
async def start(**_): ...

@kopf.timer(GROUP, VERSION, PLURAL, interval=5)
async def tick(body, patch: kopf.Patch, **_):
    patch.status["phase"] = "Progressing"
    kopf.event(body, type="Normal", reason="StepAdvanced", message="10%")

@kopf.on.event("", "v1", "configmaps")
async def seen(**_): ...
"""
    assert derived(source) == {
        "list ingestionrollouts (ingestion.apexmemory.io, namespace-scoped)",
        "watch ingestionrollouts (ingestion.apexmemory.io, namespace-scoped)",
        "patch ingestionrollouts (ingestion.apexmemory.io, namespace-scoped)",
        "patch ingestionrollouts/status (ingestion.apexmemory.io, namespace-scoped)",
        "create events (core, namespace-scoped)",
        "list configmaps (core, namespace-scoped)",
        "watch configmaps (core, namespace-scoped)",
    }


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        pytest.param(
            "import kubernetes\n"
            "def f(api: kubernetes.client.CoreV1Api):\n"
            "    api.read_namespaced_configmap('x', 'ns')\n",
            "is not a kubernetes client method",
            id="unknown-client-method",
        ),
        pytest.param(
            "import kubernetes\n"
            "def _core() -> kubernetes.client.CoreV1Api: ...\n"
            "def f():\n    _core().patch_namespaced_config_map_typo('x', 'ns', {})\n",
            "is not a kubernetes client method",
            id="unknown-method-on-a-client-factory",
        ),
        pytest.param(
            "def f(api_client):\n    api_client.call_api('/api/v1/pods', 'GET')\n",
            "raw or dynamic",
            id="raw-call-api",
        ),
        pytest.param(
            "from kubernetes.dynamic import DynamicClient\n", "raw or dynamic", id="dynamic-client"
        ),
        pytest.param(
            "def f(custom, plural):\n"
            "    custom.list_namespaced_custom_object('g', 'v1', 'ns', plural)\n",
            "{plural} is not a constant",
            id="custom-object-unknown-plural",
        ),
        pytest.param(
            "def f(core):\n    core.connect_get_namespaced_pod_exec('p', 'ns')\n",
            "exec/attach/proxy",
            id="pod-exec",
        ),
        pytest.param(
            "import kopf\n@kopf.on.validate('g', 'v1', 'things')\ndef v(**_): ...\n",
            "unclassified handler kopf.on.validate",
            id="admission-webhook",
        ),
        pytest.param(
            "import kopf\nkopf.brand_new_api()\n",
            "unclassified kopf.brand_new_api",
            id="unknown-kopf-function",
        ),
        pytest.param(
            "import kopf\nkopf.run(clusterwide=True)\n", "peering", id="kopf-with-peering"
        ),
    ],
)
def test_what_cannot_be_checked_fails_loudly(source: str, complaint: str) -> None:
    # Given code whose Kubernetes access the derivation cannot map
    # When it is scanned / Then it is an error, never a silently ignored call
    with pytest.raises(rbac.UncheckableCall, match=re.escape(complaint)):
        rbac.uses_in_source(source)


def test_kopf_still_needs_what_the_derivation_says() -> None:
    # The framework's own needs are read from kopf's behaviour; pin it to the installed kopf.
    import kopf
    from kopf._cogs.clients import patching
    from kopf._cogs.structs import references
    from kopf._core.reactor import observation

    # CRDs and namespaces are observed (list + watch), namespaces only for named namespaces
    assert (references.CRDS.group, references.CRDS.any_name) == (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
    )
    assert "references.CRDS" in inspect.getsource(observation.resource_observer)
    namespace_observer = inspect.getsource(observation.namespace_observer)
    assert "references.NAMESPACES" in namespace_observer and "not clusterwide" in namespace_observer
    # Events are core v1 events; timers need a finalizer (a patch of the object)
    assert (references.EVENTS.group, references.EVENTS.version, references.EVENTS.any_name) == (
        "",
        "v1",
        "events",
    )
    assert "requires_finalizer=True" in inspect.getsource(kopf.timer)
    # Status goes through the status subresource when the CRD has one
    assert "'status' in resource.subresources" in inspect.getsource(patching.patch_obj)

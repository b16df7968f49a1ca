"""The Helm chart, linted and rendered by the real helm CLI (`helm lint`, `helm template`).

hack/helm_chart.py runs the helm that hack/control-plane/build.sh builds, without a
cluster. These tests check what a cluster would receive: the CRD from crds/ only,
least-privilege pods, probes on the real endpoints, environment variables the processes
actually read, secrets only referenced. What only a server can check (admission, RBAC,
install, upgrade, uninstall) is in tests/integration/helm/.
"""

from __future__ import annotations

import dataclasses
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack_modules import load_hack

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "apex-ingestion-rollout"
CRD = REPO / "crds" / "ingestionrollouts.yaml"


helm = load_hack("helm_chart")
pytestmark = pytest.mark.usefixtures("helm_cli")

DEV_VALUES = yaml.safe_load((CHART / "values-dev.yaml").read_text())
ALL_FEATURES = {
    "exampleRollout": {"enabled": True},
    "liveUpdate": {"enabled": True},
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
    "openai": {"existingSecret": "openai", "baseUrl": "https://llm.example.com/v1"},
    "api": {"auth": {"existingSecret": "api-token"}},
    "neo4j": {"database": "graph", "auth": {"existingSecret": "neo4j"}},
    "s3": {"existingSecret": "s3", "endpointUrl": "https://s3.example.com"},
}
# The processes' environment besides their settings modules: boto3 reads the access keys.
BOTO3_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
SECRET_ENV = {"API_AUTH_TOKEN", "NEO4J_PASSWORD", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY"}
# The chart's own workloads run the project image; the dev services run third-party images.
APP_COMPONENTS = {"api", "worker", "operator"}


@pytest.fixture(scope="module")
def renders() -> dict[str, Any]:
    """The chart rendered with default, dev, and dev + every optional feature values."""
    return {
        "default": helm.render(),
        "dev": helm.render(helm.chart_values(DEV_VALUES)),
        "all": helm.render(helm.chart_values(DEV_VALUES, ALL_FEATURES)),
        "all-namespaces": helm.render(
            helm.chart_values(ALL_FEATURES, {"operator": {"watchAllNamespaces": True}})
        ),
    }


def pod_specs(rendered: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for manifest in rendered.manifests:
        if manifest.kind in ("Deployment", "Job"):
            yield f"{manifest.kind}/{manifest.name}", manifest.body["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def app_containers(rendered: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(component, container) of the API, worker and operator Deployments."""
    for manifest in rendered.of_kind("Deployment"):
        component = manifest.body["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in APP_COMPONENTS:
            yield component, manifest.body["spec"]["template"]["spec"]["containers"][0]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def settings_fields() -> dict[str, Any]:
    """Every variable the three settings dataclasses read: NAME -> default."""
    from ingestion_api.settings import ApiSettings
    from ingestion_operator.settings import RolloutOperatorSettings
    from ingestion_worker.settings import WorkerSettings

    return {
        field.metadata["env"]: field.default
        for cls in (WorkerSettings, ApiSettings, RolloutOperatorSettings)
        for field in dataclasses.fields(cls)
    }


# --------------------------------------------------------------------------- lint


def test_chart_lints_clean_with_default_values() -> None:
    # Given the chart as shipped / When Helm lints it
    result = helm.lint()
    # Then there is no warning or error (a template calling `fail` is an error)
    assert not result.at_least(helm.Severity.WARNING), result.describe()


@pytest.mark.parametrize(
    "layers",
    [pytest.param([DEV_VALUES], id="dev"), pytest.param([DEV_VALUES, ALL_FEATURES], id="all")],
)
def test_chart_lints_clean_with_dev_values(layers: list[dict[str, Any]]) -> None:
    # Given values-dev.yaml (and every optional feature) / When Helm lints the chart with them
    result = helm.lint(helm.chart_values(*layers))
    # Then it is clean too
    assert not result.at_least(helm.Severity.WARNING), result.describe()


def test_helm_renders_for_a_kubernetes_the_chart_supports(tmp_path: Path) -> None:
    # Given the chart's floor (kubeVersion) and helm's own Kubernetes version without a
    # cluster (Capabilities.KubeVersion of `helm template`, `helm lint`): a helm built
    # without helm's Makefile ldflags says v1.20 and refuses the chart (build.sh sets them)
    chart = helm.chart_copy(tmp_path)
    (chart / "templates" / "zz-capabilities.yaml").write_text(
        "kind: Capabilities\nversion: {{ .Capabilities.KubeVersion.Version }}\n"
    )
    floor = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    # When the copy is rendered offline
    rendered = helm.render(chart=chart)
    (capabilities,) = [m.body for m in rendered.manifests if m.kind == "Capabilities"]
    # Then helm renders for a Kubernetes at or above the chart's floor
    major, minor = (int(part) for part in capabilities["version"].lstrip("v").split(".")[:2])
    assert floor == ">=1.29.0-0"
    assert (major, minor) >= (1, 29), capabilities


# --------------------------------------------------------------------------- the CRD


def test_chart_crd_is_the_repository_crd_file_itself() -> None:
    # Given the chart's crds/ directory
    chart_crds = sorted((CHART / "crds").iterdir())
    # Then its only entry is a symlink to crds/ingestionrollouts.yaml: no second copy to drift
    assert [p.name for p in chart_crds] == ["ingestionrollouts.yaml"]
    assert chart_crds[0].is_symlink(), "the chart must link the CRD, not copy it"
    assert chart_crds[0].resolve() == CRD.resolve()


def test_packaged_chart_carries_the_crd_byte_for_byte(tmp_path: Path) -> None:
    # Given the chart / When Helm packages it (what `helm package` / a chart repository ships)
    archive = helm.package(tmp_path)
    # Then Helm followed the symlink: the archive holds the CRD, identical to crds/
    with tarfile.open(archive) as tar:
        member = tar.extractfile("apex-ingestion-rollout/crds/ingestionrollouts.yaml")
        assert member is not None, "helm package left the CRD out"
        packaged = member.read()
    assert packaged == CRD.read_bytes()


def test_templates_never_render_a_crd(renders: dict[str, Any]) -> None:
    # The CRD comes from crds/ only (installed before the templates, never templated).
    for name, rendered in renders.items():
        assert not rendered.of_kind("CustomResourceDefinition"), name


# --------------------------------------------------------------------------- every object


def test_every_object_carries_the_standard_labels(renders: dict[str, Any]) -> None:
    required = {
        "app.kubernetes.io/name": "apex-ingestion-rollout",
        "app.kubernetes.io/instance": helm.RELEASE_NAME,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/version": "0.1.0",
    }
    for name, rendered in renders.items():
        for manifest in rendered.manifests:
            labels = manifest.body["metadata"].get("labels") or {}
            where = f"{name}: {manifest.kind}/{manifest.name}"
            assert {k: labels.get(k) for k in required} == required, where
            assert labels.get("app.kubernetes.io/component"), where
            assert labels.get("helm.sh/chart") == "apex-ingestion-rollout-0.1.0", where


def test_every_pod_runs_restricted(renders: dict[str, Any]) -> None:
    # The one documented exception: the dev Neo4j image writes its config under its root fs.
    writable_root = {"neo4j"}
    for name, rendered in renders.items():
        for where, spec in pod_specs(rendered):
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True, f"{name}: {where}"
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, f"{name}: {where}"
            for container in containers(spec):
                at = f"{name}: {where} container {container['name']}"
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, at
                assert context["capabilities"] == {"drop": ["ALL"]}, at
                read_only = container["name"] not in writable_root
                assert context["readOnlyRootFilesystem"] is read_only, at
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]), at
                assert "memory" in resources["limits"], at


def test_container_commands_are_the_projects_console_scripts(renders: dict[str, Any]) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    expected = {
        "api": "ingestion-api",
        "worker": "ingestion-worker",
        "operator": "ingestion-operator",
    }
    for component, container in app_containers(renders["default"]):
        assert container["command"] == [expected[component]]
        assert expected[component] in scripts, f"{expected[component]} is not a console script"


def test_probes_hit_the_processes_real_endpoints(renders: dict[str, Any]) -> None:
    # Given the routes the API registers
    app = (REPO / "worker/ingestion_api/app.py").read_text()
    assert 'add_get("/healthz"' in app and 'add_get("/readyz"' in app
    expected = {  # component: (liveness path, readiness path, port env, port name)
        "api": ("/healthz", "/readyz", "API_PORT", "http"),
        "worker": ("/metrics", "/metrics", "METRICS_PORT", "metrics"),
        "operator": ("/healthz", "/healthz", "OPERATOR_LIVENESS_PORT", "health"),
    }
    for component, container in app_containers(renders["default"]):
        live, ready, port_env, port_name = expected[component]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = env_of(container)
        # Then each probe asks the process's own endpoint on the port the process listens on
        assert container["livenessProbe"]["httpGet"] == {"path": live, "port": port_name}
        assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": port_name}
        assert int(env[port_env]["value"]) == ports[port_name], component
        assert ports[port_name] == settings_fields()[port_env], f"{component}: chart vs settings"


def test_containers_set_only_environment_the_processes_read(renders: dict[str, Any]) -> None:
    known = set(settings_fields()) | BOTO3_ENV
    for name, rendered in renders.items():
        for component, container in app_containers(rendered):
            unknown = set(env_of(container)) - known
            assert not unknown, f"{name}: {component} sets {sorted(unknown)}, read by no process"


def test_operator_watches_its_namespace_unless_told_otherwise(renders: dict[str, Any]) -> None:
    operator = dict(app_containers(renders["default"]))["operator"]
    assert env_of(operator)["OPERATOR_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    cluster_wide = dict(app_containers(renders["all-namespaces"]))["operator"]
    assert "OPERATOR_NAMESPACE" not in env_of(cluster_wide)


def test_operator_is_a_single_recreated_replica(renders: dict[str, Any]) -> None:
    deployment = renders["default"].one("Deployment", "test-release-ingestion-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_worker_pods_get_no_kubernetes_token(renders: dict[str, Any]) -> None:
    worker = renders["default"].one("Deployment", "ingestion-temporal-worker")
    assert worker["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


# --------------------------------------------------------------------------- secrets


def test_no_secret_is_ever_rendered(renders: dict[str, Any]) -> None:
    for name, rendered in renders.items():
        assert not rendered.of_kind("Secret"), f"{name}: the chart must not render Secrets"


def test_secret_environment_comes_only_from_referenced_secrets(renders: dict[str, Any]) -> None:
    # Given values naming an existing Secret for each credential
    expected = {
        "API_AUTH_TOKEN": ("api-token", "token"),
        "OPENAI_API_KEY": ("openai", "api-key"),
        "NEO4J_USER": ("neo4j", "username"),
        "NEO4J_PASSWORD": ("neo4j", "password"),
        "AWS_ACCESS_KEY_ID": ("s3", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": ("s3", "AWS_SECRET_ACCESS_KEY"),
    }
    rendered = renders["all-namespaces"]  # default values + ALL_FEATURES (no dev secret)
    seen = set()
    for component, container in app_containers(rendered):
        for env_name, item in env_of(container).items():
            if env_name in expected:
                # Then the variable is a secretKeyRef to exactly that Secret and key
                secret, key = expected[env_name]
                assert item == {
                    "name": env_name,
                    "valueFrom": {"secretKeyRef": {"name": secret, "key": key}},
                }, component
                seen.add(env_name)
    assert seen == set(expected)


def test_without_secrets_the_credentials_stay_unset(renders: dict[str, Any]) -> None:
    for component, container in app_containers(renders["default"]):
        assert not SECRET_ENV & set(env_of(container)), component
    notes = renders["default"].notes
    assert "WARNING: api.auth.existingSecret is empty" in notes
    assert "WARNING: openai.existingSecret is empty" in notes


def test_secret_values_are_never_plain_anywhere(renders: dict[str, Any]) -> None:
    secret_names = SECRET_ENV | {"NEO4J_AUTH", "MINIO_ROOT_PASSWORD", "MINIO_ROOT_USER"}
    for name, rendered in renders.items():
        for where, spec in pod_specs(rendered):
            for container in containers(spec):
                for env_name, item in env_of(container).items():
                    if env_name in secret_names:
                        assert "value" not in item, f"{name}: {where} {env_name} is plain"


# --------------------------------------------------------------------------- names


def test_worker_and_routing_names_are_the_crd_defaults(renders: dict[str, Any]) -> None:
    # Given the CRD's defaults, so that a rollout with `spec: {}` drives this install
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]["properties"]
    default_worker = spec["workers"]["default"][0]["deploymentName"]
    routing = spec["routing"]["properties"]
    # Then the chart's worker Deployment and routing ConfigMap carry exactly those names
    rendered = renders["default"]
    assert rendered.one("Deployment", default_worker)
    configmap = rendered.one("ConfigMap", routing["configMapName"]["default"])
    assert configmap["data"] == {routing["key"]["default"]: "0"}


def test_operator_may_touch_only_the_named_configmap_and_deployment(
    renders: dict[str, Any],
) -> None:
    # Given extra names in values / When rendered
    rendered = helm.render(
        helm.chart_values(
            {
                "operator": {
                    "rbac": {
                        "extraRoutingConfigMaps": ["other-routing"],
                        "extraWorkerDeployments": ["other-worker"],
                    }
                }
            }
        )
    )
    rules = rendered.one("Role", "test-release-ingestion-operator")["rules"]
    # Then every ConfigMap and Deployment rule is limited to those names
    names = {r["resources"][0]: r.get("resourceNames") for r in rules}
    assert names["configmaps"] == ["ingestion-routing", "other-routing"]
    assert names["deployments"] == ["ingestion-temporal-worker", "other-worker"]
    assert names["deployments/scale"] == ["ingestion-temporal-worker", "other-worker"]


# --------------------------------------------------------------------------- example rollout


def test_example_rollout_is_off_by_default(renders: dict[str, Any]) -> None:
    assert not renders["default"].of_kind("IngestionRollout")
    assert "kind: IngestionRollout" in renders["default"].notes  # NOTES shows how to start one


def test_example_rollout_is_valid_and_drives_this_install(renders: dict[str, Any]) -> None:
    from ingestion_operator.crd_validation import validate_rollout

    # Given the dev values with the example rollout enabled
    rendered = renders["all"]
    (rollout,) = [m.body for m in rendered.of_kind("IngestionRollout")]
    # Then the CRD's schema and CEL rules accept it
    assert validate_rollout(rollout) == []
    # And it names this install's worker, routing ConfigMap and (dev) Prometheus
    spec = rollout["spec"]
    assert rendered.one("Deployment", spec["workers"][0]["deploymentName"])
    assert rendered.one("ConfigMap", spec["routing"]["configMapName"])
    prometheus = rendered.one("Service", "test-release-ingestion-prometheus")
    port = prometheus["spec"]["ports"][0]["port"]
    assert spec["analysis"]["prometheusUrl"] == f"http://test-release-ingestion-prometheus:{port}"


# --------------------------------------------------------------------------- NOTES


def test_notes_tell_the_user_the_next_commands(renders: dict[str, Any]) -> None:
    notes = renders["default"].notes
    assert "get pods -l app.kubernetes.io/instance=test-release" in notes
    assert "port-forward svc/test-release-ingestion-api 8080:80" in notes
    assert "get ingestionrollouts -w" in notes
    assert "get events --field-selector involvedObject.kind=IngestionRollout" in notes
    dev = renders["dev"].notes
    assert "port-forward svc/test-release-ingestion-temporal 8233:8233" in dev
    assert "export INGESTION_API_TOKEN=" in dev  # the dev values set an API token Secret


def test_rollout_the_notes_suggest_is_valid(renders: dict[str, Any]) -> None:
    from ingestion_operator.crd_validation import validate_rollout

    # Given the heredoc NOTES print for the user to paste
    notes = renders["default"].notes
    body = notes.split("<<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0]
    # Then it is a valid rollout for this install, and the heredoc's end is at column 0
    rollout = yaml.safe_load(body)
    assert validate_rollout(rollout) == []
    assert rollout["spec"]["workers"][0]["deploymentName"] == "ingestion-temporal-worker"
    assert rollout["spec"]["analysis"]["prometheusUrl"] == "http://prometheus-server:9090"


def test_values_files_are_plain_data() -> None:
    # values files are read by Helm, Tilt and the scripts: no templating inside them
    for path in (CHART / "values.yaml", CHART / "values-dev.yaml"):
        assert "{{" not in path.read_text(), path

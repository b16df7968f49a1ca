"""The optional Prometheus Operator objects and the Grafana dashboard.

Off by default; when on, the ServiceMonitor finds the metrics ports the pods expose, the
alerting rules pass promtool, the dashboard's queries are valid PromQL for a real
Prometheus, and every metric they name is one the code exports (so a renamed metric fails
here, not on an empty dashboard).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack_modules import load_hack
from ingestion_contract import metrics as contract_metrics
from ingestion_sandbox.servers.services import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "apex-ingestion-rollout"
RULES_FILE = CHART / "files/prometheus-rules.yaml"
DASHBOARD_FILE = CHART / "files/grafana-dashboard.json"
MONITORING = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
}
# Series Prometheus itself provides (not exported by the code).
PROMETHEUS_SERIES = {"up"}


helm = load_hack("helm_chart")


@pytest.fixture(scope="module")
def rendered(helm_cli: str) -> Any:
    return helm.render(helm.chart_values(MONITORING))


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD_FILE.read_text()))


def dashboard_queries() -> dict[str, list[str]]:
    """Panel title -> its PromQL expressions."""
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard()["panels"]}


def alert_queries() -> dict[str, str]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def metric_name(node: ast.expr) -> str | None:
    """A metric's name as written at its definition: a literal, or a name of the metric
    contract (`contract.DOCUMENTS_TOTAL`, from ingestion_contract.metrics)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute | ast.Name):
        value = getattr(contract_metrics, getattr(node, "attr", getattr(node, "id", "")), None)
        return value if isinstance(value, str) else None
    return None


def exported_metrics() -> set[str]:
    """Series names the code exports through prometheus_client (any module, any process)."""
    suffixes = {"Counter": ["_total"], "Histogram": ["_bucket", "_sum", "_count"], "Gauge": [""]}
    names = set()
    for root in (REPO / "worker", REPO / "operator"):
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                kind = getattr(node.func, "attr", getattr(node.func, "id", ""))
                name = metric_name(node.args[0])
                if kind in suffixes and name is not None:
                    base = name.removesuffix("_total")
                    names |= {base + suffix for suffix in suffixes[kind]}
    return names


def metric_names(promql: str) -> set[str]:
    """The series a PromQL expression reads (the project's own and Prometheus' `up`)."""
    text = re.sub(r'"[^"]*"', '""', promql)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\b(by|without)\s*\([^)]*\)", "", text)  # grouping labels
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return {t for t in tokens if t.startswith(("ingestion", "temporal_")) or t in PROMETHEUS_SERIES}


# --------------------------------------------------------------------------- off by default


def test_monitoring_objects_are_off_by_default(helm_cli: str) -> None:
    default = helm.render()
    assert not default.of_kind("ServiceMonitor")
    assert not default.of_kind("PrometheusRule")
    assert not [m for m in default.of_kind("ConfigMap") if m.name.endswith("-dashboard")]


# --------------------------------------------------------------------------- ServiceMonitor


def test_service_monitor_finds_every_metrics_endpoint(rendered: Any) -> None:
    # Given the ServiceMonitor and the Services it selects
    (monitor,) = [m.body for m in rendered.of_kind("ServiceMonitor")]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]
    (components,) = [e["values"] for e in selector["matchExpressions"]]
    selected = [
        s.body
        for s in rendered.of_kind("Service")
        if selector["matchLabels"].items() <= s.body["metadata"]["labels"].items()
        and s.body["metadata"]["labels"]["app.kubernetes.io/component"] in components
    ]
    endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    # Then every component has a selected Service with an endpoint port, and that port
    # targets the container port serving /metrics
    deployments = {
        d.body["metadata"]["labels"]["app.kubernetes.io/component"]: d.body
        for d in rendered.of_kind("Deployment")
    }
    for component in ("api", "worker", "operator"):
        services = [
            s
            for s in selected
            if s["metadata"]["labels"]["app.kubernetes.io/component"] == component
        ]
        ports = [p for s in services for p in s["spec"]["ports"] if p["name"] in endpoint_ports]
        assert ports, f"no scraped Service port for {component}"
        container = deployments[component]["spec"]["template"]["spec"]["containers"][0]
        assert ports[0]["targetPort"] in {p["name"] for p in container["ports"]}, component


# --------------------------------------------------------------------------- PrometheusRule


def test_prometheus_rule_carries_the_rules_file(rendered: Any) -> None:
    (rule,) = [m.body for m in rendered.of_kind("PrometheusRule")]
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text())


def test_alerting_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found: apt-get install prometheus (it ships promtool)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: a missing tool fails instead of skipping)")
        pytest.skip(message)
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES_FILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_rollbacks_errors_latency_backlog_and_the_operator() -> None:
    alerts = alert_queries()
    covered = {name for alert in alerts.values() for name in metric_names(alert)}
    assert {
        "ingestionrollout_rollbacks_total",
        "ingestion_documents_total",
        "ingestion_duration_seconds_bucket",
        "temporal_task_queue_backlog",
        "ingestion_db_connection_errors_total",
        "up",
    } <= covered


# --------------------------------------------------------------------------- dashboard


def test_dashboard_configmap_carries_the_dashboard_for_the_grafana_sidecar(rendered: Any) -> None:
    (configmap,) = [m.body for m in rendered.of_kind("ConfigMap") if m.name.endswith("-dashboard")]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["apex-ingestion-rollout.json"]) == dashboard()


def test_dashboard_shows_split_errors_latency_backlog_and_weight() -> None:
    queries = dashboard_queries()
    by_metric = {title: set().union(*map(metric_names, exprs)) for title, exprs in queries.items()}

    def panel(metric: str, *fragments: str) -> list[str]:
        return [
            title
            for title, exprs in queries.items()
            if metric in by_metric[title] and all(f in " ".join(exprs) for f in fragments)
        ]

    assert panel("ingestion_documents_total", "by (path)"), "traffic split per path"
    assert panel("ingestion_documents_total", 'outcome="failure"', "by (path)"), "error rate"
    assert panel("ingestion_duration_seconds_bucket", "le, path"), "latency per path"
    assert panel("temporal_task_queue_backlog"), "task-queue backlog"
    assert panel("ingestionrollout_percentage"), "rollout weight over time"


def test_dashboards_and_alerts_read_only_metrics_the_code_exports() -> None:
    exported = exported_metrics() | PROMETHEUS_SERIES
    queries = {f"alert {n}": [q] for n, q in alert_queries().items()}
    queries |= {f"panel {t}": q for t, q in dashboard_queries().items()}
    for where, exprs in queries.items():
        for expr in exprs:
            unknown = metric_names(expr) - exported
            assert not unknown, f"{where} reads {sorted(unknown)}, which no code exports"


def test_dashboard_queries_are_valid_promql(prometheus: PrometheusServer) -> None:
    # Given a real Prometheus / When it evaluates each panel's query (Grafana's variables
    # replaced as Grafana would) / Then none is refused as malformed
    for title, exprs in dashboard_queries().items():
        for expr in exprs:
            query = expr.replace("$__rate_interval", "1m").replace("$namespace", ".*")
            url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    answer = json.loads(response.read())
            except urllib.error.HTTPError as exc:  # 400 bad_data: the query does not parse
                answer = json.loads(exc.read())
            assert answer["status"] == "success", f"{title}: {query}: {answer}"

"""The real operator, as its own OS process, against the Kubernetes API emulator and a real
Prometheus scraping traffic this test controls.

Why a process and not handler calls: what can break between the pure decisions and a
cluster is the glue (kopf registration, credentials from KUBECONFIG, merge patches,
the scale subresource, status subresource writes, Events). Only `kopf run` exercises it.

The traffic is a private CollectorRegistry exporting the metric contract
(ingestion_documents_total, ingestion_duration_seconds, temporal_task_queue_backlog,
ingestion_db_connection_errors_total), fed by a background thread with equal, healthy
latencies on both paths; the breach scenario switches on heavy Temporal failures.
Prometheus is shared by the session, so the rollouts' queries are scoped to this
module's scrape job. Timings are generous and only ever polled: nothing asserts speed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from ingestion_operator.analysis import default_queries
from ingestion_sandbox.common import LOCALHOST, free_port
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

GROUP, VERSION, PLURAL = "ingestion.apexmemory.io", "v1alpha1", "ingestionrollouts"
NAMESPACE = "default"
TIMEOUT = 60.0
WINDOW = "10s"
MAX_REPLICAS = 10
OPERATOR_ROOT = Path(__file__).resolve().parents[3] / "operator"


@dataclass
class Traffic:
    """The contract metrics and the thread that keeps documents flowing."""

    job: str
    registry: CollectorRegistry
    failing: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        reg = self.registry
        self.documents = Counter(
            "ingestion_documents_total", "docs", ["path", "outcome"], registry=reg
        )
        self.duration = Histogram("ingestion_duration_seconds", "s", ["path"], registry=reg)
        self.backlog = Gauge("temporal_task_queue_backlog", "backlog", registry=reg)
        self.db_errors = Counter("ingestion_db_connection_errors_total", "errors", registry=reg)
        for path in ("temporal", "legacy"):
            for outcome in ("success", "failure"):
                self.documents.labels(path=path, outcome=outcome)

    def feed(self) -> None:
        """Ten healthy documents a second per path; forty Temporal failures when failing."""
        while not self.stop.wait(0.1):
            for path in ("temporal", "legacy"):
                self.documents.labels(path=path, outcome="success").inc()
                self.duration.labels(path=path).observe(0.1)
            if self.failing.is_set():
                self.documents.labels(path="temporal", outcome="failure").inc(4)


@pytest.fixture(scope="module")
def traffic(prometheus: Any) -> Iterator[Traffic]:
    """Healthy traffic exported on a port of its own and scraped by the shared Prometheus."""
    feed = Traffic(job=f"operator-{uuid.uuid4().hex[:8]}", registry=CollectorRegistry())
    port = free_port()
    server, _ = start_http_server(port, addr=LOCALHOST, registry=feed.registry)
    thread = threading.Thread(target=feed.feed, name="traffic", daemon=True)
    thread.start()
    prometheus.set_targets({feed.job: [f"{LOCALHOST}:{port}"]}, scrape_interval="500ms")
    prometheus.wait_for_series(
        f'increase(ingestion_documents_total{{job="{feed.job}",path="temporal"}}[{WINDOW}]) > 0',
        timeout=TIMEOUT,
    )
    yield feed
    feed.stop.set()
    thread.join(timeout=5)
    server.shutdown()


@pytest.fixture(scope="module")
def api(kube_emulator: Any, kubeconfig: Path) -> kubernetes.client.ApiClient:
    """The CRD declared on the emulator (status subresource), and a client for the test."""
    kube_emulator.register_custom_resource(
        GROUP,
        VERSION,
        "IngestionRollout",
        PLURAL,
        singular="ingestionrollout",
        short_names=["ir"],
        subresources={"status"},
    )
    return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture(scope="module")
def operator(api: Any, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`kopf run --standalone` in a child process; yields its /metrics URL."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    metrics_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "TIMER_INTERVAL_SECONDS": "1",
        "OPERATOR_METRICS_PORT": str(metrics_port),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(OPERATOR_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    command = [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "--standalone",
        "-m",
        "ingestion_operator.handlers",
        "--namespace",
        NAMESPACE,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://{LOCALHOST}:{metrics_port}/metrics"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text()[-5000:])  # shown by pytest when a test failed


def seed_targets(kube_emulator: Any, deployment: str, configmap: str) -> None:
    """The Deployment (1 replica) and the routing ConfigMap at 0%, as a cluster would have."""
    kube_emulator.seed(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": deployment, "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": deployment}},
                "template": {
                    "metadata": {"labels": {"app": deployment}},
                    "spec": {"containers": [{"name": "worker", "image": "worker:test"}]},
                },
            },
        }
    )
    kube_emulator.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": configmap, "namespace": NAMESPACE},
            "data": {"temporalPercentage": "0"},
        }
    )


def rollout_body(name: str, traffic: Traffic, prometheus_url: str, **spec: Any) -> dict[str, Any]:
    """A fast rollout whose queries look only at this module's scrape job."""
    queries = default_queries(WINDOW, 0.99, labels={"job": traffic.job})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IngestionRollout",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "steps": [10, 50, 100],
            "stepDuration": "2s",
            "analysis": {
                "prometheusUrl": prometheus_url,
                "interval": "1s",
                "window": WINDOW,
                "minSampleCount": 5,
                "queries": queries,
            },
            **spec,
        },
    }


def poll[T](read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Re-read until done(value) or TIMEOUT; the failure names the last value seen."""
    deadline = time.monotonic() + TIMEOUT
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value!r}")
        time.sleep(0.3)
        value = read()
    return value


def status_of(api: Any, name: str) -> dict[str, Any]:
    obj: Any = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name
    )
    return dict(obj.get("status") or {})


def events_of(api: Any, name: str) -> list[dict[str, Any]]:
    """Events about the rollout, read raw (no client model: only the fields we check)."""
    response: Any = kubernetes.client.CoreV1Api(api).list_namespaced_event(
        NAMESPACE, _preload_content=False
    )
    items = json.loads(response.data)["items"]
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


def percentage(kube_emulator: Any, configmap: str) -> str:
    return str(
        kube_emulator.get("v1/configmaps", NAMESPACE, configmap)["data"]["temporalPercentage"]
    )


def replicas(kube_emulator: Any, deployment: str) -> int:
    return int(kube_emulator.get("apps/v1/deployments", NAMESPACE, deployment)["spec"]["replicas"])


def test_healthy_rollout_completes(
    kube_emulator: Any, api: Any, operator: str, traffic: Traffic, prometheus: Any
) -> None:
    traffic.failing.clear()
    name = f"healthy-{uuid.uuid4().hex[:6]}"
    seed_targets(kube_emulator, "ingestion-temporal-worker", "ingestion-routing")
    body = rollout_body(name, traffic, prometheus.url)
    kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, body
    )
    status = poll(
        lambda: status_of(api, name), lambda s: s.get("phase") == "Completed", "phase Completed"
    )
    assert status["currentPercentage"] == 100
    assert status["stepLabel"] == "3/3"
    assert status["lastAnalysis"]["verdict"] in ("Pass", "Inconclusive")
    assert [h["toPercentage"] for h in status["history"]] == [10, 50, 100, 100]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Progressing": "False", "Completed": "True", "RolledBack": "False"}
    assert percentage(kube_emulator, "ingestion-routing") == "100"
    assert replicas(kube_emulator, "ingestion-temporal-worker") == math.ceil(
        MAX_REPLICAS * 100 / 100
    )
    reasons = poll(
        lambda: {e["reason"] for e in events_of(api, name)},
        lambda r: {"StepAdvanced", "RolloutCompleted"} <= r,
        "events",
    )
    assert "RolledBack" not in reasons


def test_breach_rolls_back(
    kube_emulator: Any, api: Any, operator: str, traffic: Traffic, prometheus: Any
) -> None:
    traffic.failing.clear()
    name = f"breach-{uuid.uuid4().hex[:6]}"
    deployment, configmap = f"{name}-worker", f"{name}-routing"
    seed_targets(kube_emulator, deployment, configmap)
    body = rollout_body(
        name,
        traffic,
        prometheus.url,
        stepOverrides=[{"step": 50, "duration": "10m"}],  # hold 50% until the breach shows
        routing={"configMapName": configmap},
        workers=[{"deploymentName": deployment, "minReplicas": 1, "maxReplicas": MAX_REPLICAS}],
    )
    kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, body
    )
    poll(lambda: status_of(api, name), lambda s: s.get("currentPercentage") == 50, "50%")
    assert percentage(kube_emulator, configmap) == "50"
    assert replicas(kube_emulator, deployment) == math.ceil(MAX_REPLICAS * 50 / 100)
    traffic.failing.set()
    try:
        status = poll(
            lambda: status_of(api, name),
            lambda s: s.get("phase") == "RolledBack",
            "phase RolledBack",
        )
    finally:
        traffic.failing.clear()
    assert status["currentPercentage"] == 0
    assert percentage(kube_emulator, configmap) == "0"
    warnings = poll(
        lambda: [e for e in events_of(api, name) if e["reason"] == "RolledBack"],
        bool,
        "a RolledBack event",
    )
    assert warnings[0]["type"] == "Warning"
    assert "errorRate" in warnings[0]["message"]
    # the backlog gauge is 0, so the workers are drained back to minReplicas
    poll(lambda: replicas(kube_emulator, deployment), lambda r: r == 1, "replicas back to 1")

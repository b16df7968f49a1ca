"""What every operator scenario stands on: the real operator process, a namespace of its
own on the Kubernetes API emulator, and contract metrics a real Prometheus scrapes.

Why a process and not handler calls: what can break between the pure decisions and a
cluster is the glue (kopf registration, credentials from KUBECONFIG, merge patches,
the scale subresource, status subresource writes, Events). Only the real process
exercises it.

The traffic is ingestion_sandbox.servers.contract_metrics: the metric contract served on a
port of its own, healthy and with equal latencies on both paths until a scenario
switches Temporal failures on. Prometheus
is shared by the session, so each module's rollouts query only its own scrape job,
and each module's operator watches only its own namespace. Timings are generous and
only ever polled: nothing asserts speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from ingestion_contract.crd import ANNOTATION_PREFIX, API_VERSION, GROUP, KIND, PLURAL, VERSION
from ingestion_contract.routing import PERCENTAGE_KEY, format_percentage
from ingestion_operator.metricproviders.prometheus_queries import default_queries
from ingestion_sandbox.servers.common import LOCALHOST, free_port
from ingestion_sandbox.servers.contract_metrics import ContractTraffic as Traffic

TIMEOUT = 60.0
WINDOW = "10s"
MAX_REPLICAS = 10
REPO = Path(__file__).resolve().parents[3]
SOURCE_ROOTS = [REPO / "operator", REPO / "contract"]


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


@dataclass
class Cluster:
    """One module's namespace on the emulator, with the reads and writes scenarios need."""

    emulator: Any
    api: kubernetes.client.ApiClient
    namespace: str

    @property
    def objects(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api)

    def seed_targets(self, deployment: str, configmap: str) -> None:
        """The worker Deployment (1 replica) and the routing ConfigMap at 0%."""
        self.seed_deployment(deployment)
        self.emulator.seed(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": configmap, "namespace": self.namespace},
                "data": {PERCENTAGE_KEY: format_percentage(0)},
            }
        )

    def seed_deployment(self, name: str) -> None:
        labels = {"app": name}
        self.emulator.seed(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "worker", "image": "worker:test"}]},
                    },
                },
            }
        )

    def create(self, body: dict[str, Any]) -> None:
        body["metadata"]["namespace"] = self.namespace
        self.objects.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        """A merge patch of the rollout (spec fields or annotations), as kubectl would."""
        self.objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            body,
            _content_type="application/merge-patch+json",
        )

    def annotate(self, name: str, command: str) -> None:
        key = ANNOTATION_PREFIX + command
        self.patch(name, {"metadata": {"annotations": {key: str(time.time())}}})

    def rollout(self, name: str) -> dict[str, Any]:
        return dict(
            self.objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        )

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.rollout(name).get("status") or {})

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events about the rollout, read raw (no client model: only the fields we check)."""
        response: Any = kubernetes.client.CoreV1Api(self.api).list_namespaced_event(
            self.namespace, _preload_content=False
        )
        items = json.loads(response.data)["items"]
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]

    def reasons(self, name: str) -> list[str]:
        return [str(e["reason"]) for e in self.events(name)]

    def percentage(self, configmap: str) -> str:
        found = self.emulator.get("v1/configmaps", self.namespace, configmap)
        return str(found["data"][PERCENTAGE_KEY])

    def replicas(self, deployment: str) -> int:
        found = self.emulator.get("apps/v1/deployments", self.namespace, deployment)
        return int(found["spec"]["replicas"])


class OperatorProcess:
    """`python -m ingestion_operator` as a child process, watching one namespace."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path) -> None:
        self.log = log
        metrics_port, liveness_port = free_port(), free_port()
        self.metrics_url = f"http://{LOCALHOST}:{metrics_port}/metrics"
        self.liveness_url = f"http://{LOCALHOST}:{liveness_port}/healthz"
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "OPERATOR_NAMESPACE": namespace,
            "TIMER_INTERVAL_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
            "OPERATOR_BIND_ADDRESS": LOCALHOST,
            "OPERATOR_METRICS_PORT": str(metrics_port),
            "OPERATOR_LIVENESS_PORT": str(liveness_port),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [*map(str, SOURCE_ROOTS), os.environ.get("PYTHONPATH")])
            ),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ingestion_operator"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (graceful) or SIGKILL (a crash); waits for the process to be gone."""
        process, self.process = self.process, None
        if process is None:
            return
        process.kill() if kill else process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def get(self, url: str) -> tuple[int, str]:
        """(status, body); (0, the error) while the server is not up, so it can be polled."""
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except OSError as exc:
            return 0, repr(exc)


@pytest.fixture(scope="module")
def traffic(prometheus: Any) -> Iterator[Traffic]:
    """Healthy traffic exported on a port of its own and scraped by the shared Prometheus."""
    feed = Traffic(job=f"operator-{uuid.uuid4().hex[:8]}", per_second=20).start()
    prometheus.set_targets({feed.job: [feed.target]}, scrape_interval="500ms")
    prometheus.wait_for_series(
        f'increase(ingestion_documents_total{{job="{feed.job}",path="temporal"}}[{WINDOW}]) > 0',
        timeout=TIMEOUT,
    )
    yield feed
    feed.stop()


@pytest.fixture(scope="session")
def rollout_crd(kube_emulator: Any) -> None:
    """The CRD declared on the emulator, with its status subresource."""
    kube_emulator.register_rollout_crd()


@pytest.fixture(scope="module")
def cluster(kube_emulator: Any, kubeconfig: Path, rollout_crd: None) -> Cluster:
    """A fresh namespace per test module, so modules never see each other's rollouts."""
    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    namespace = f"ops-{uuid.uuid4().hex[:8]}"
    kube_emulator.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    return Cluster(kube_emulator, api, namespace)


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The running operator for this module's namespace; its log is printed at teardown."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(kubeconfig, cluster.namespace, log)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(log.read_text()[-5000:])  # shown by pytest when a test failed


def rollout_body(name: str, traffic: Traffic, prometheus_url: str, **spec: Any) -> dict[str, Any]:
    """A fast rollout whose queries look only at this module's scrape job."""
    queries = default_queries(WINDOW, 0.99, labels={"job": traffic.job})
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
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


def own_targets(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    """Seed a Deployment and ConfigMap named after the rollout; the spec fields naming them."""
    deployment, configmap = f"{name}-worker", f"{name}-routing"
    cluster.seed_targets(deployment, configmap)
    return {
        "routing": {"configMapName": configmap},
        "workers": [{"deploymentName": deployment, "minReplicas": 1, "maxReplicas": MAX_REPLICAS}],
        **spec,
    }

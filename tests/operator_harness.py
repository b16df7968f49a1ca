"""What the operator's process-level tests stand on, on the real control plane.

The operator runs as users run it: `python -m ingestion_operator` as a child process,
with the token of the ServiceAccount that `helm install` of the chart creates
(tests/chart_plugin.py installs it into a namespace of its own), so it has exactly the
chart's RBAC: a call the chart does not grant fails here with the API server's 403, as
it would in a cluster. The chart's RBAC names the ConfigMaps and Deployments the operator
may touch (resourceNames), so each namespace's install lists a pool of target names
(operator.rbac.extra*) that the scenarios take one by one. The rollouts, ConfigMaps and
Deployments live on the real kube-apiserver: admission with the CRD's schema and CEL
rules, `generation` and `observedGeneration`, the status subresource, real watches, the
scale subresource, and Deployments whose Pods the controllers create and kwok makes Ready.

Used by tests/integration/operator/ and tests/faults/test_operator_faults.py.
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import kubernetes
import yaml
from chart_plugin import InstalledChart, install, uninstall
from ingestion_contract.crd import ANNOTATION_PREFIX, API_VERSION, GROUP, KIND, PLURAL, VERSION
from ingestion_contract.routing import PERCENTAGE_KEY, format_percentage
from ingestion_sandbox.servers.common import LOCALHOST, free_port
from ingestion_sandbox.servers.control_plane import ControlPlane

TIMEOUT = 60.0
REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds" / "ingestionrollouts.yaml"
CRD_NAME = f"{PLURAL}.{GROUP}"
SOURCE_ROOTS = [REPO / "operator", REPO / "contract"]
POOL = 8  # target pairs (ConfigMap, Deployment) the operator may touch per namespace


def poll[T](
    read: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = TIMEOUT
) -> T:
    """Re-read until done(value) or the timeout; the failure names the last value seen."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value!r}")
        time.sleep(0.3)
        value = read()
    return value


def install_crd(plane: ControlPlane, crd: Path = CRD) -> None:
    """The CRD as `kubectl apply --server-side` installs it (idempotent), then Established."""
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    plane.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")


def pool_values(size: int = POOL) -> dict[str, Any]:
    """Chart values granting the operator the pool's object names (resourceNames)."""
    rbac = {
        "extraRoutingConfigMaps": [f"routing-{i}" for i in range(size)],
        "extraWorkerDeployments": [f"worker-{i}" for i in range(size)],
    }
    return {"operator": {"rbac": rbac}}


@dataclass
class Cluster:
    """The chart installed in a namespace of its own, and the reads and writes the
    scenarios need (as an admin user: what kubectl would do)."""

    chart: InstalledChart
    api: kubernetes.client.ApiClient
    taken: list[tuple[str, str]] = field(default_factory=list)

    @property
    def plane(self) -> ControlPlane:
        return self.chart.plane

    @property
    def namespace(self) -> str:
        return self.chart.namespace

    @property
    def objects(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api)

    @property
    def apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(self.api)

    def take(self) -> tuple[str, str]:
        """The next (Deployment, ConfigMap) names of the pool the chart's RBAC grants."""
        index = len(self.taken)
        assert index < POOL, f"more than {POOL} target pairs in one namespace: raise POOL"
        self.taken.append((f"worker-{index}", f"routing-{index}"))
        return self.taken[-1]

    def seed_targets(self, **deployment_spec: Any) -> tuple[str, str]:
        """A worker Deployment (1 replica) and a routing ConfigMap at 0%, from the pool."""
        deployment, configmap = self.take()
        self.seed_deployment(deployment, **deployment_spec)
        body = {"metadata": {"name": configmap}, "data": {PERCENTAGE_KEY: format_percentage(0)}}
        self.core.create_namespaced_config_map(self.namespace, cast(Any, body))
        return deployment, configmap

    def seed_deployment(self, name: str, node_selector: dict[str, str] | None = None) -> None:
        """A worker Deployment of 1 replica; kwok makes its Pods Ready unless `node_selector`
        matches no Node (then they stay Pending and none is available)."""
        labels = {"app": name}
        pod: dict[str, Any] = {"containers": [{"name": "worker", "image": "worker:test"}]}
        if node_selector:
            pod["nodeSelector"] = node_selector
        body = {
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }
        self.apps.create_namespaced_deployment(self.namespace, cast(Any, body))

    def create(self, body: dict[str, Any]) -> None:
        body["metadata"]["namespace"] = self.namespace
        self.objects.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        """A merge patch of the rollout (spec fields or annotations), as kubectl would."""
        self.objects.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    def annotate(self, name: str, command: str) -> None:
        key = ANNOTATION_PREFIX + command
        self.patch(name, {"metadata": {"annotations": {key: str(time.time())}}})

    def rollout(self, name: str) -> dict[str, Any]:
        found: Any = self.objects.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return dict(found)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.rollout(name).get("status") or {})

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events about the rollout, read raw (no client model: only the fields we check)."""
        response: Any = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}", _preload_content=False
        )
        return list(json.loads(response.data)["items"])

    def reasons(self, name: str) -> list[str]:
        return [str(e["reason"]) for e in self.events(name)]

    def percentage(self, configmap: str) -> str:
        found: Any = self.core.read_namespaced_config_map(configmap, self.namespace)
        return str(found.data[PERCENTAGE_KEY])

    def replicas(self, deployment: str) -> int:
        """spec.replicas, read through the scale subresource the operator writes."""
        scale: Any = self.apps.read_namespaced_deployment_scale(deployment, self.namespace)
        return int(scale.spec.replicas)

    def available(self, deployment: str) -> int:
        found: Any = self.apps.read_namespaced_deployment_status(deployment, self.namespace)
        return int(found.status.available_replicas or 0)


@contextmanager
def operator_cluster(plane: ControlPlane, prefix: str = "ops") -> Iterator[Cluster]:
    """`helm install` of the chart into a fresh namespace (its objects not awaited: the
    operator under test runs here, not the chart's Pod); uninstalled afterwards."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    plane.create_namespace(namespace)
    chart = install(plane, namespace, values=pool_values(), release=namespace, wait=False)
    api = kubernetes.config.new_client_from_config(config_file=str(plane.kubeconfig))
    try:
        yield Cluster(chart, api)
    finally:
        uninstall(chart)
        plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        api.close()


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

    def start(self) -> OperatorProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ingestion_operator"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

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

    def logged(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def running_operator(cluster: Cluster, log: Path) -> Iterator[OperatorProcess]:
    """The operator for the cluster's namespace with its ServiceAccount token; its log's
    tail is printed at the end (pytest shows it when a test failed)."""
    process = OperatorProcess(cluster.chart.operator_kubeconfig, cluster.namespace, log).start()
    try:
        yield process
    finally:
        process.stop()
        print(process.logged()[-6000:])


def rollout_body(
    name: str, job: str, prometheus_url: str, window: str = "10s", **spec: Any
) -> dict[str, Any]:
    """A fast rollout whose built-in queries read only the scrape job `job` (metricLabels)."""
    analysis = {
        "prometheusUrl": prometheus_url,
        "interval": "1s",
        "window": window,
        "minSampleCount": 5,
        "metricLabels": {"job": job},
        **spec.pop("analysis", {}),
    }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"steps": [10, 50, 100], "stepDuration": "2s", "analysis": analysis, **spec},
    }


def manifest(body: dict[str, Any]) -> str:
    return yaml.safe_dump(body)

"""How fast the operator pulls traffic off a failing Temporal path, and what it costs.

1. Rollback detection: contract-metrics traffic (ingestion_sandbox.servers.contract_metrics,
   default 40 documents/s on the Temporal path) is scraped by a real Prometheus every
   second; the real operator process (`python -m ingestion_operator`, timer 1 s,
   analysis interval 1 s, window 10 s) holds a rollout at 10%. Then every Temporal
   document starts failing. Measured: from the first failing document counted to the
   routing ConfigMap reading 0 on the API server (polled every 20 ms).
   Repeated --trials times (retry annotation in between).
2. Scale: --rollouts IngestionRollouts (each with its own ConfigMap and Deployment),
   analysing every 5 s (timer 5 s), held at their first step. After a warm-up, the
   operator process's CPU time (psutil, children included) over --measure seconds and
   its peak RSS are reported.

Both run on the local control plane (ingestion_sandbox.servers.control_plane: a real
kube-apiserver, etcd, the controllers and kwok, whose fake Node runs the workers' Pods),
so the operator's watches, patches and Deployment reads (it waits for available workers
before raising traffic) cost what they cost against a real API server. The operator
uses the admin kubeconfig here: per-object RBAC for 100 rollouts' targets would only
lengthen a Role, not change the operator's work.

    .venv/bin/python bench/operator_bench.py [--trials 5] [--rollouts 100] [--measure 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import kubernetes
import psutil
from _stats import percentile
from ingestion_contract.crd import ANNOTATION_PREFIX, API_VERSION, GROUP, KIND, PLURAL, VERSION
from ingestion_contract.routing import PERCENTAGE_KEY, format_percentage
from ingestion_sandbox.servers.common import LOCALHOST, free_port
from ingestion_sandbox.servers.contract_metrics import ContractTraffic
from ingestion_sandbox.servers.control_plane import ControlPlane
from ingestion_sandbox.servers.services import PrometheusServer

NAMESPACE = "bench"
REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds" / "ingestionrollouts.yaml"
# The operator's source roots, for a process started from a checkout without an install.
SOURCE_ROOTS = [REPO / root for root in ("operator", "contract")]


def wait_for[T](
    read: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str, every: float = 0.02
) -> T:
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}; last seen {value!r}")
        time.sleep(every)
        value = read()
    return value


class Sandbox:
    """Control plane + Prometheus + traffic + the operator process, torn down together."""

    def __init__(self, timer_seconds: float, per_second: float) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="operator-bench-"))
        self.plane = ControlPlane().start()
        self.plane.kubectl("apply", "--server-side", "-f", str(CRD))
        crd = f"crd/{PLURAL}.{GROUP}"
        self.plane.kubectl("wait", "--for=condition=Established", crd, "--timeout=60s")
        self.plane.create_namespace(NAMESPACE)
        self.kubeconfig = self.plane.kubeconfig
        self.api = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        self.traffic = ContractTraffic(job="bench", per_second=per_second).start()
        self.prometheus = PrometheusServer(scrape_interval="1s")
        self.prometheus.targets = {"bench": [self.traffic.target]}
        self.prometheus.start()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "OPERATOR_NAMESPACE": NAMESPACE,
            "TIMER_INTERVAL_SECONDS": str(timer_seconds),
            "OPERATOR_METRICS_PORT": "0",
            "OPERATOR_LIVENESS_PORT": str(free_port()),
            "OPERATOR_BIND_ADDRESS": LOCALHOST,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [*map(str, SOURCE_ROOTS), os.getenv("PYTHONPATH")])
            ),
        }
        log = open(self.dir / "operator.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.operator = subprocess.Popen(
            [sys.executable, "-m", "ingestion_operator"], env=env, stdout=log, stderr=log
        )

    def close(self) -> None:
        self.operator.terminate()
        try:
            self.operator.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.operator.kill()
            self.operator.wait()
        self.prometheus.stop()
        self.traffic.stop()
        self.plane.stop()

    def seed(self, name: str) -> dict[str, Any]:
        """A Deployment and a ConfigMap of the rollout's own; the spec fields naming them."""
        labels = {"app": name}
        deployment: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"{name}-worker"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "worker", "image": "worker:bench"}]},
                },
            },
        }
        configmap: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-routing"},
            "data": {PERCENTAGE_KEY: format_percentage(0)},
        }
        kubernetes.client.AppsV1Api(self.api).create_namespaced_deployment(
            NAMESPACE, cast(Any, deployment)
        )
        kubernetes.client.CoreV1Api(self.api).create_namespaced_config_map(
            NAMESPACE, cast(Any, configmap)
        )
        return {
            "routing": {"configMapName": f"{name}-routing"},
            "workers": [{"deploymentName": f"{name}-worker", "maxReplicas": 10}],
        }

    def create(self, name: str, interval: str, window: str) -> None:
        spec = {
            **self.seed(name),
            "stepDuration": "1h",
            "analysis": {
                "prometheusUrl": self.prometheus.url,
                "interval": interval,
                "window": window,
                "minSampleCount": 5,
                "metricLabels": {"job": "bench"},
            },
        }
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
        kubernetes.client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, body
        )

    def percentage(self, name: str) -> str:
        found: Any = kubernetes.client.CoreV1Api(self.api).read_namespaced_config_map(
            f"{name}-routing", NAMESPACE
        )
        return str((found.data or {}).get(PERCENTAGE_KEY))

    def count_at_10(self) -> int:
        """Rollouts whose ConfigMap reads 10 (one LIST, not a GET per rollout)."""
        found: Any = kubernetes.client.CoreV1Api(self.api).list_namespaced_config_map(NAMESPACE)
        ten = format_percentage(10)
        return sum((cm.data or {}).get(PERCENTAGE_KEY) == ten for cm in found.items)

    def status(self, name: str) -> dict[str, Any]:
        found: Any = kubernetes.client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name
        )
        return dict(found.get("status") or {})

    def annotate(self, name: str, command: str) -> None:
        body = {"metadata": {"annotations": {ANNOTATION_PREFIX + command: str(time.time())}}}
        kubernetes.client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip


def detection(trials: int, per_second: float) -> dict[str, Any]:
    box = Sandbox(timer_seconds=1, per_second=per_second)
    seconds: list[float] = []
    try:
        box.prometheus.wait_for_series('up{job="bench"} == 1', timeout=30)
        name = "detect"
        box.create(name, interval="1s", window="10s")
        for trial in range(trials):
            wait_for(lambda: box.percentage(name), lambda p: p == "10", 60, "10%")
            # healthy analyses first: the rollout must be passing when the fault starts
            wait_for(lambda: box.status(name), _passing, 60, "a passing analysis")
            box.traffic.fail()
            wait_for(lambda: box.percentage(name), lambda p: p == "0", 60, "0%")
            zero_at = time.monotonic()
            first = box.traffic.first_failure_at or zero_at
            seconds.append(zero_at - first)
            print(f"  trial {trial + 1}: {seconds[-1]:.2f} s", flush=True)
            box.traffic.fail(False)
            time.sleep(12)  # let the 10 s window forget the failures before the retry
            box.annotate(name, "retry")
    finally:
        box.close()
    return {"trials": seconds, "p50": percentile(seconds, 0.5), "max": max(seconds)}


def _passing(status: dict[str, Any]) -> bool:
    return (status.get("lastAnalysis") or {}).get("verdict") == "Pass"


def scale(rollouts: int, warmup: float, measure: float) -> dict[str, Any]:
    box = Sandbox(timer_seconds=5, per_second=20)
    try:
        box.prometheus.wait_for_series('up{job="bench"} == 1', timeout=30)
        for i in range(rollouts):
            box.create(f"r{i:03d}", interval="5s", window="30s")
        wait_for(box.count_at_10, lambda n: n == rollouts, 180, "every rollout at 10%", 1.0)
        time.sleep(warmup)
        process = psutil.Process(box.operator.pid)
        before, started = process.cpu_times(), time.monotonic()
        peak = 0
        while time.monotonic() - started < measure:
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.5)
        after, elapsed = process.cpu_times(), time.monotonic() - started
        cpu = (after.user + after.system) - (before.user + before.system)
        found: Any = kubernetes.client.CustomObjectsApi(box.api).list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL
        )
        analysed = sum(_recent(item.get("status") or {}, 15) for item in found["items"])
    finally:
        box.close()
    return {
        "rollouts": rollouts,
        "cores": cpu / elapsed,
        "peak_rss_mb": peak / 2**20,
        "analysed_in_last_15s": analysed,
    }


def _recent(status: dict[str, Any], seconds: float) -> bool:
    at = (status.get("lastAnalysis") or {}).get("at")
    if not at:
        return False
    return (datetime.now(UTC) - datetime.fromisoformat(at)).total_seconds() < seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rate", type=float, default=40.0, help="Temporal documents/s")
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--measure", type=float, default=60.0)
    parser.add_argument("--only", choices=["detection", "scale"], help="run one of the two")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.only in (None, "detection"):
        print(f"rollback detection ({args.rate:.0f} Temporal docs/s, 1 s scrape, 1 s interval):")
        detect = results["detection"] = detection(args.trials, args.rate)
        print(
            f"  first failing document -> 0% routed: "
            f"p50 {detect['p50']:.2f} s, max {detect['max']:.2f} s"
        )
    if args.only in (None, "scale"):
        print(f"operator with {args.rollouts} rollouts analysing every 5 s:")
        cost = results["scale"] = scale(args.rollouts, args.warmup, args.measure)
        print(
            f"  CPU {cost['cores']:.3f} cores, peak RSS {cost['peak_rss_mb']:.0f} MB, "
            f"{cost['analysed_in_last_15s']}/{args.rollouts} analysed in the last 15 s"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

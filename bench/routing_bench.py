"""What routing costs per request, and how fast a percentage change reaches the API replicas.

1. `should_use_temporal` per call (timeit, 1e6 calls, best of 5), at 0% and 100%
   (answered without hashing) and at 50% (md5 of the id), plus `bucket_of`.
2. Propagation: two ConfigMapRoutingSource instances (two "API replicas") watch a
   ConfigMap on the local Kubernetes API emulator (real HTTP); the percentage is patched
   20 times with the kubernetes client, and the time until *both* replicas applied it
   is taken from their on_change callbacks (exact, no polling). Reported from the patch
   call's start and from its return (a watch event can beat the PATCH response home).

    .venv/bin/python bench/routing_bench.py [--changes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
import timeit
from pathlib import Path

import kubernetes
from _stats import percentile
from ingestion_api.routing import RoutingConfig, bucket_of, should_use_temporal
from ingestion_api.routing_source import ConfigMapRoutingSource
from ingestion_sandbox.servers.services import KubeEmulator

DOCUMENT_ID = "3f2b8c1e-5d4a-4e8b-9c7f-1a2b3c4d5e6f"
CALLS = 1_000_000
REPEATS = 5
NAMESPACE = "default"
NAME = "ingestion-routing"
KEY = "percentage"


def ns_per_call(statement: str) -> float:
    """Best of REPEATS timeit runs of CALLS calls, in ns per call."""
    namespace = {"should_use_temporal": should_use_temporal, "bucket_of": bucket_of}
    timer = timeit.Timer(statement, setup=f"doc = {DOCUMENT_ID!r}", globals=namespace)
    return min(timer.repeat(repeat=REPEATS, number=CALLS)) / CALLS * 1e9


class Replica:
    """A source plus the perf_counter time of its latest applied change."""

    def __init__(self, kubeconfig: Path) -> None:
        self.applied = threading.Event()
        self.applied_at = 0.0
        self.source = ConfigMapRoutingSource(
            NAMESPACE, NAME, KEY, str(kubeconfig), RoutingConfig(), on_change=self.on_change
        )

    def on_change(self, config: RoutingConfig) -> None:
        self.applied_at = time.perf_counter()  # called in the watch thread, right after applying
        self.applied.set()


async def propagation(changes: int) -> tuple[list[float], list[float]]:
    """Seconds until both replicas applied each change: (from patch start, from patch return)."""
    with tempfile.TemporaryDirectory() as tmp, KubeEmulator() as kube:
        kubeconfig = kube.write_kubeconfig(Path(tmp) / "kubeconfig")
        kube.seed(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": NAME, "namespace": NAMESPACE},
                "data": {KEY: "0"},
            }
        )
        core = kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        )
        replicas = [Replica(kubeconfig), Replica(kubeconfig)]
        for replica in replicas:
            await replica.source.start()
        from_start, from_return = [], []
        try:
            for i in range(changes):
                for replica in replicas:
                    replica.applied.clear()
                sent = time.perf_counter()
                core.patch_namespaced_config_map(NAME, NAMESPACE, {"data": {KEY: str(i + 1)}})
                returned = time.perf_counter()
                for replica in replicas:
                    if not await asyncio.to_thread(replica.applied.wait, 5.0):
                        raise RuntimeError(f"change {i + 1} did not reach a replica in 5 s")
                last = max(r.applied_at for r in replicas)
                from_start.append(last - sent)
                from_return.append(max(0.0, last - returned))
        finally:
            for replica in replicas:
                await replica.source.stop()
            core.api_client.close()
        return from_start, from_return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results: dict[str, float] = {}

    print(f"routing decision cost (timeit, {CALLS:.0e} calls, best of {REPEATS})")
    print(f"  {'call':<34} {'ns/call':>8}")
    for statement in (
        "should_use_temporal(doc, 50)",
        "should_use_temporal(doc, 0)",
        "should_use_temporal(doc, 100)",
        "bucket_of(doc)",
    ):
        results[statement] = ns_per_call(statement)
        print(f"  {statement:<34} {results[statement]:>8.0f}")

    from_start, from_return = asyncio.run(propagation(args.changes))
    print(f"\npropagation to 2 replicas via the KubeEmulator ({args.changes} changes), ms")
    print(f"  {'measured from':<20} {'p50':>7} {'p99':>7} {'max':>7}")
    for label, values in (("patch sent", from_start), ("patch returned", from_return)):
        p50, p99 = percentile(values, 0.50) * 1e3, percentile(values, 0.99) * 1e3
        print(f"  {label:<20} {p50:>7.2f} {p99:>7.2f} {max(values) * 1e3:>7.2f}")
        results[f"propagation {label} p50_ms"], results[f"propagation {label} p99_ms"] = p50, p99
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

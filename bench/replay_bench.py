"""How long `kubectl ingestionrollout replay` takes over a week of history.

A real Prometheus is backfilled (promtool) with 7 days of the metric contract for one
ingestion deployment (ingestion_sandbox.servers.prometheus_history: 5 Temporal and 45
legacy documents a second, 1% of Temporal failing, both paths' latency in the router's
27 buckets, a scrape every --scrape seconds), then one rollout is replayed over the whole
week at 30 s steps, as a user runs it (the plugin's own process, JSON output), once per
judge. The rollout holds each step for 48 hours, so the operator analyses at every
instant for six days and the sequential judge counts evidence over steps two days long.
Printed: the median wall time of --runs runs [min-max], the instants, the analyses and
the requests the replay sent to Prometheus.

    .venv/bin/python bench/replay_bench.py [--days 7] [--scrape 15] [--runs 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from ingestion_contract.crd import API_VERSION, KIND
from ingestion_sandbox.servers.prometheus_history import ContractHistory, HistoryPrometheus
from judge_bench import BUCKETS

PLUGIN = str(Path(sys.executable).parent / "kubectl-ingestionrollout")
DAY = 86_400


def history(start: int, end: int, scrape: int) -> ContractHistory:
    """A healthy week with a daily rhythm in latency (both paths alike)."""

    def latency(t: int) -> float:
        return 0.08 + 0.04 * math.sin(2 * math.pi * (t % DAY) / DAY)

    return ContractHistory(
        start,
        end,
        scrape=scrape,
        job="bench",
        error_rate=lambda _: 0.01,
        temporal_latency=latency,
        legacy_latency=latency,
        buckets=BUCKETS["router"],
    )


def manifest(directory: Path, url: str) -> Path:
    path = directory / "rollout.yaml"
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "week"},
        "spec": {
            "steps": [10, 50, 100],
            "stepDuration": "48h",
            "analysis": {"prometheusUrl": url, "metricLabels": {"job": "bench"}},
        },
    }
    path.write_text(yaml.safe_dump(body))
    return path


def replay_once(rollout: Path, start: int, end: int, judge: str) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    done = subprocess.run(
        [PLUGIN, "replay", "-f", str(rollout), "--from", str(start), "--to", str(end),
         "--step", "30s", "--judge", judge, "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"replay failed: {done.stderr}")
    shown: dict[str, Any] = json.loads(done.stdout)
    return took, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scrape", type=int, default=15, help="seconds between scrapes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="also write the headline numbers to this file")
    args = parser.parse_args()
    end = int(time.time()) // 60 * 60 - 600
    start = end - args.days * DAY
    began = time.perf_counter()
    with HistoryPrometheus([history(start - 600, end, args.scrape)], ready_timeout=600) as prom:
        loaded = time.perf_counter() - began
        print(f"{args.days} days backfilled and Prometheus ready in {loaded:.0f} s", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            rollout = manifest(Path(tmp), prom.url)
            results = {
                judge: [replay_once(rollout, start, end, judge) for _ in range(args.runs)]
                for judge in ("threshold", "sequential")
            }
    print(f"\nreplay of {args.days} days at 30 s steps, one rollout, {args.runs} runs each:")
    print(f"{'judge':<12} {'median s [min-max]':<22} instants  analyses  requests")
    headline: dict[str, Any] = {"days": args.days, "scrape_seconds": args.scrape}
    for judge, runs in results.items():
        times = [took for took, _ in runs]
        shown = runs[-1][1]
        median = statistics.median(times)
        spread = f"{median:.1f} [{min(times):.1f}-{max(times):.1f}]"
        print(
            f"{judge:<12} {spread:<22} {shown['instants']:<9} {shown['analyses']:<9} "
            f"{shown['requests']}"
        )
        headline[judge] = {
            "median_s": median,
            "min_s": min(times),
            "max_s": max(times),
            "requests": shown["requests"],
            "instants": shown["instants"],
        }
    medians = " / ".join(f"{headline[j]['median_s']:.0f}" for j in ("threshold", "sequential"))
    headline["rows"] = [[f"replay {args.days} days at 30 s steps, thr / seq", f"{medians} s"]]
    if args.json:
        Path(args.json).write_text(json.dumps(headline))


if __name__ == "__main__":
    main()

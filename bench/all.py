"""`make bench`: every benchmark in one run, summed up in one table.

Runs bench/pipeline_bench.py (Temporal vs legacy on the same documents),
bench/routing_bench.py (routing decision, percentage propagation),
bench/operator_bench.py (rollback detection, operator cost with 100 rollouts) and
bench/judge_bench.py (threshold vs sequential judge, simulated) one after another,
each in its own process so they do not share cores or state, then
prints their headline numbers side by side. Each benchmark's own output is shown
as it runs; the table comes last.

    .venv/bin/python bench/all.py [--documents 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run(script: str, out: Path, *args: str) -> dict[str, Any]:
    """One benchmark in a child process; its --json results."""
    print(f"\n=== {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args, "--json", str(out)], check=True)
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def rows(
    pipeline: dict[str, Any], routing: dict[str, Any], operator: dict[str, Any]
) -> list[tuple[str, str]]:
    legacy, temporal = pipeline["legacy"], pipeline["temporal"]
    detect, scale = operator["detection"], operator["scale"]
    return [
        ("legacy path p50 / p99", f"{legacy['p50_ms']:.0f} / {legacy['p99_ms']:.0f} ms"),
        ("Temporal path p50 / p99", f"{temporal['p50_ms']:.0f} / {temporal['p99_ms']:.0f} ms"),
        ("Temporal / legacy p50, p99", _ratios(temporal, legacy)),
        ("throughput legacy / Temporal", _throughput(legacy, temporal)),
        ("routing decision", f"{routing['should_use_temporal(doc, 50)']:.0f} ns"),
        (
            "percentage propagation p50 / p99",
            f"{routing['propagation patch returned p50_ms']:.2f} / "
            f"{routing['propagation patch returned p99_ms']:.2f} ms",
        ),
        ("rollback detection p50 / max", f"{detect['p50']:.2f} / {detect['max']:.2f} s"),
        (
            f"operator, {scale['rollouts']} rollouts",
            f"{scale['cores']:.3f} cores, {scale['peak_rss_mb']:.0f} MB",
        ),
    ]


def judge_rows(judge: dict[str, Any]) -> list[tuple[str, str]]:
    """judge_bench.py's headline: false rollbacks and 15% errors rolled back, thr / seq."""
    worst = judge["worst_false_rollbacks"]
    seconds = judge["rollback_15pct_median_s"]

    def median(rate: str) -> str:
        return " / ".join("never" if s is None else f"{s:.0f}" for s in seconds[rate]) + " s"

    return [
        (
            "judge false rollbacks, worst cell thr / seq",
            f"{100 * worst['threshold']:.1f}% / {100 * worst['sequential']:.1f}%",
        ),
        ("15% errors rolled back, 5 docs/s thr / seq", median("5")),
        ("15% errors rolled back, 50 docs/s thr / seq", median("50")),
    ]


def _ratios(temporal: dict[str, float], legacy: dict[str, float]) -> str:
    p50 = temporal["p50_ms"] / legacy["p50_ms"]
    return f"x{p50:.2f}, x{temporal['p99_ms'] / legacy['p99_ms']:.2f}"


def _throughput(legacy: dict[str, float], temporal: dict[str, float]) -> str:
    return f"{legacy['docs_per_s']:.1f} / {temporal['docs_per_s']:.1f} docs/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100, help="per pipeline measurement")
    parser.add_argument("--quick", action="store_true", help="fewer trials and shorter windows")
    args = parser.parse_args()
    operator_args = ["--trials", "3", "--measure", "20"] if args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        pipeline = run("pipeline_bench.py", out / "p.json", "--documents", str(args.documents))
        routing = run("routing_bench.py", out / "r.json")
        operator = run("operator_bench.py", out / "o.json", *operator_args)
        judge_args = ["--buckets", "router", "--seq-interval", "5"]
        judge_args += ["--quick"] if args.quick else ["--runs", "500"]
        judge = run("judge_bench.py", out / "j.json", *judge_args)
    table = rows(pipeline, routing, operator) + judge_rows(judge)
    width = max(len(name) for name, _ in table)
    print(f"\n{'measure':<{width}}  result")
    for name, value in table:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()

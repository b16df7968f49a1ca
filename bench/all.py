"""`make bench`: every benchmark in one run, summed up in one table.

Runs bench/pipeline_bench.py (Temporal vs legacy on the same documents),
bench/routing_bench.py (routing decision, percentage propagation),
bench/operator_bench.py (rollback detection, operator cost with 100 rollouts),
bench/judge_bench.py (threshold vs sequential judge, simulated), bench/status_bench.py
(status reads) and bench/replay_bench.py (a week of what-if replay) one after another,
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
    detect, scale = operator["detection"], operator["scale"]
    return [
        *pipeline_rows(pipeline["summary"]["10 KB"]),
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


def pipeline_rows(ten_kb: dict[str, dict[str, list[float]]]) -> list[tuple[str, str]]:
    """pipeline_bench.py's headline, 10 KB documents: medians over its runs [min-max]."""

    def path(measure: str, column: str, unit: str = " ms") -> str:
        median, low, high = ten_kb[measure][column]
        return f"{median:.0f}{unit} [{low:.0f}-{high:.0f}]"

    def ratio(measure: str) -> str:
        median, low, high = ten_kb[measure]["ratio"]
        return f"x{median:.2f} [{low:.2f}-{high:.2f}]"

    return [
        *(
            (
                f"10 KB {p} p50 / p99",
                f"{path('p50 ms one at a time', p)} / {path('p99 ms one at a time', p)}",
            )
            for p in ("legacy", "temporal")
        ),
        ("10 KB Temporal / legacy p50", ratio("p50 ms one at a time")),
        ("10 KB Temporal / legacy p99", ratio("p99 ms one at a time")),
        ("10 KB Temporal / legacy throughput", ratio("docs/s")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100, help="per pipeline measurement")
    parser.add_argument("--quick", action="store_true", help="fewer trials and shorter windows")
    args = parser.parse_args()
    operator_args = ["--trials", "3", "--measure", "20"] if args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        pipeline_args = ["--quick"] if args.quick else ["--documents", str(args.documents)]
        pipeline = run("pipeline_bench.py", out / "p.json", *pipeline_args)
        routing = run("routing_bench.py", out / "r.json")
        operator = run("operator_bench.py", out / "o.json", *operator_args)
        judge_args = ["--buckets", "router", "--seq-interval", "5"]
        judge_args += ["--quick"] if args.quick else ["--runs", "500"]
        judge = run("judge_bench.py", out / "j.json", *judge_args)
        run("status_bench.py", out / "s.json", *(["--rounds", "2"] if args.quick else []))
    table = rows(pipeline, routing, operator) + judge_rows(judge)
    table += run(
        "replay_bench.py",
        Path(tempfile.gettempdir()) / "replay_bench.json",
        *(["--days", "1", "--runs", "1"] if args.quick else []),
    )["rows"]
    width = max(len(name) for name, _ in table)
    print(f"\n{'measure':<{width}}  result")
    for name, value in table:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()

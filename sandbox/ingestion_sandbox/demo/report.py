"""The demo's results: a summary (text and JSON) and a chart, written to the run directory.

People would rather look than read, so the chart shows the whole story at once: the
routing weight stepping up, falling to 0% when the Temporal error rate jumps, and
climbing back to 100% after the retry, with p99 latency per path underneath and the
rollout's Events marked. The summary answers the questions a reviewer asks: what
happened when, how long the rollback took to detect, how many documents went each
way, whether any was lost, which judge decided, and how far the healthy Temporal path
was from the product's latency threshold, which the demo keeps.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ingestion_contract.crd_defaults import SPEC

from ingestion_sandbox.demo.monitor import Sample
from ingestion_sandbox.demo.timeline import (
    MILESTONES,
    Timeline,
    back_to_zero_at,
    detection_seconds,
    rollbacks,
)
from ingestion_sandbox.demo.traffic import DocRecord

SEQUENTIAL = "sequential"


def _healthy(samples: Sequence[Sample], t: Timeline) -> list[Sample]:
    """Samples taken while both paths carried traffic and no fault was on."""
    found = []
    for s in samples:
        faulty = t.fault_injected_at is not None and t.fault_injected_at <= s.at
        recovered = t.retried_at is not None and s.at >= t.retried_at
        if (not faulty or recovered) and s.weight is not None and 0 < s.weight < 100:
            found.append(s)
    return found


def latency_ratios(samples: Sequence[Sample], t: Timeline) -> list[float]:
    """The latencyRatio the operator measured while both paths were healthy (no fault)."""
    return [s.judged["latencyRatio"] for s in _healthy(samples, t) if "latencyRatio" in s.judged]


def p99_deltas(samples: Sequence[Sample], t: Timeline) -> list[float]:
    """Temporal p99 - legacy p99 (seconds, the panel's window) while both were healthy:
    with the ratio, what the latency rule's floor (minLatencyDeltaSeconds) is judged on."""
    return [
        s.p99["temporal"] - s.p99["legacy"]
        for s in _healthy(samples, t)
        if "temporal" in s.p99 and "legacy" in s.p99
    ]


def judging(analysis: dict[str, Any]) -> dict[str, Any]:
    """How the rollout was judged: its judge and the latency rule's limits (CRD defaults
    for anything the rollout leaves out)."""
    thresholds = {**SPEC["analysis"]["thresholds"], **(analysis.get("thresholds") or {})}
    judge = analysis.get("judge", SPEC["analysis"]["judge"])
    return {
        "judge": judge,
        "alpha": analysis.get("alpha", SPEC["analysis"]["alpha"]) if judge == SEQUENTIAL else None,
        "max_error_rate": thresholds["maxErrorRate"],
        "max_latency_ratio": thresholds["maxLatencyRatio"],
        "latency_quantile": thresholds["latencyQuantile"],
        "min_latency_delta_seconds": thresholds["minLatencyDeltaSeconds"],
    }


def summarize(
    t: Timeline,
    samples: Sequence[Sample],
    problems: list[str],
    analysis: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Everything summary.json holds; `analysis` is the applied rollout's spec.analysis."""
    ratios, deltas = latency_ratios(samples, t), p99_deltas(samples, t)
    found = rollbacks(t, after=t.fault_injected_at) if t.fault_injected_at is not None else []
    zero = back_to_zero_at(t)
    judged = judging(analysis)
    return {
        "result": "ok" if not problems else "failed",
        "problems": problems,
        "judge": judged["judge"],
        "milestones": [asdict(e) for e in t.events if e.reason in MILESTONES],
        "fault_injected_at": t.fault_injected_at,
        "rollback_event": found[0].message if found else None,
        "detection_seconds": detection_seconds(t),
        "fault_to_rollback_seconds": (
            zero - t.fault_injected_at if zero is not None and t.fault_injected_at else None
        ),
        "documents": {**asdict(t.documents), "lost": t.documents.unfinished},
        "analysis": judged,
        "latency": {
            "measured_ratio_median": statistics.median(ratios) if ratios else None,
            "measured_ratio_max": max(ratios) if ratios else None,
            "p99_delta_seconds_median": statistics.median(deltas) if deltas else None,
            "p99_delta_seconds_max": max(deltas) if deltas else None,
        },
        "timeline": t.to_json(),
        **extra,
    }


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def summary_text(summary: dict[str, Any]) -> str:
    docs = summary["documents"]
    moments = [(m["at"], m["reason"], m["message"]) for m in summary["milestones"]]
    timeline = summary["timeline"]
    for key, label in (("fault_injected_at", "fault on"), ("fault_cleared_at", "fault off")):
        if timeline[key] is not None:
            moments.append((timeline[key], label, "fault ConfigMap patched (kubectl)"))
    lines = ["Timeline (seconds since the demo started):"]
    lines += [f"  +{at:6.1f}s  {what:<17} {text}" for at, what, text in sorted(moments)]
    lines += [
        f"Rollback: {summary['rollback_event'] or 'none'}",
        f"  detection: first failed Temporal document -> routing at 0% in "
        f"{_seconds(summary['detection_seconds'])} (fault switched on -> 0% in "
        f"{_seconds(summary['fault_to_rollback_seconds'])})",
        f"Documents: {docs['submitted']} submitted, succeeded {docs['succeeded']}, "
        f"failed by the injected fault {docs['failed_injected']}, other failures "
        f"{docs['failed_other']}, lost {docs['lost']}",
        f"  formats {docs['by_format']}; 429/503 answers retried: {docs['refusals']}",
    ]
    if docs["other_errors"]:
        lines.append(f"  other errors: {docs['other_errors']}")
    lines += judge_lines(summary["analysis"], summary["latency"])
    verdict = "the story happened as told" if not summary["problems"] else "the story FAILED:"
    lines.append(f"Result: {verdict}")
    lines += [f"  - {p}" for p in summary["problems"]]
    return "\n".join(lines)


def judge_lines(analysis: dict[str, Any], latency: dict[str, Any]) -> list[str]:
    """Which judge decided, with its thresholds, and the latency ratio measured."""
    a = analysis
    quantile = f"p{a['latency_quantile'] * 100:g}"
    judge = a["judge"] + (f" (alpha {a['alpha']:g})" if a["judge"] == SEQUENTIAL else "")
    median, worst = latency["measured_ratio_median"], latency["measured_ratio_max"]
    measured = "not measured" if median is None else f"median {median:.1f}x, max {worst:.1f}x"
    delta, most = latency["p99_delta_seconds_median"], latency["p99_delta_seconds_max"]
    slower = "not measured" if delta is None else f"median {delta:.2f}s, max {most:.2f}s"
    return [
        f"Judge: {judge}; maxErrorRate {a['max_error_rate']:g}; latency rule: Temporal "
        f"{quantile} > {a['max_latency_ratio']:g}x legacy and more than "
        f"{a['min_latency_delta_seconds']:g}s slower",
        f"  while healthy (10-50%, fault excluded): Temporal/legacy {quantile} as the operator "
        f"judged it {measured}; Temporal p99 - legacy p99 over the panel's window {slower}",
    ]


def write_summary(summary: dict[str, Any], run_dir: Path) -> str:
    text = summary_text(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (run_dir / "summary.txt").write_text(text + "\n")
    return text


def write_documents(records: Sequence[DocRecord], t0: float, path: Path) -> Path:
    """One row per document (times in seconds since the demo started), for digging in."""
    fields = ["document_id", "kind", "path", "status", "error_type", "refusals"]
    times = ["submitted_at", "accepted_at", "finished_at"]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*fields, *times])
        for r in records:
            stamps = [getattr(r, name) for name in times]
            writer.writerow(
                [getattr(r, name) for name in fields]
                + [None if s is None else round(s - t0, 3) for s in stamps]
            )
    return path


MARKERS = {
    "StepAdvanced": ("tab:gray", ":"),
    "Started": ("tab:gray", ":"),
    "RolledBack": ("tab:red", "-"),
    "Retry": ("tab:blue", "-."),
    "RolloutCompleted": ("tab:green", "-"),
}
COLORS = {"temporal": "tab:purple", "legacy": "tab:orange"}


def write_chart(samples: Sequence[Sample], t: Timeline, path: Path) -> Path:
    """Weight, error rate and p99 per path over time, with the story's moments marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (top, mid, low) = plt.subplots(3, 1, figsize=(11, 8), dpi=100, sharex=True)
    times = [s.at for s in samples]
    top.step(times, [s.weight for s in samples], where="post", color="black", label="weight %")
    top.set_ylabel("Temporal weight %")
    top.set_ylim(-5, 115)
    workers = top.twinx()
    workers.step(times, [s.workers_running for s in samples], where="post", color="tab:cyan")
    workers.set_ylabel("worker processes", color="tab:cyan")
    workers.set_ylim(0, max([4, *(s.workers_running + 1 for s in samples)]))
    for p, color in COLORS.items():
        mid.plot(times, [_pct(s.error_rate.get(p)) for s in samples], color=color, label=p)
        low.plot(times, [_ms(s.p99.get(p)) for s in samples], color=color, label=p)
    mid.set_ylabel("error rate %")
    low.set_ylabel("p99 latency (ms)")
    low.set_xlabel("seconds since the demo started")
    for axis in (top, mid, low):
        _mark(axis, t)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left", fontsize=8)
    _label(top, t)
    fig.suptitle("IngestionRollout: 10% -> 50%, fault -> automatic rollback, retry -> 100%")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _moments(t: Timeline) -> list[tuple[float, str, str, str]]:
    """(time, label, color, line style) of every moment worth a vertical line."""
    moments = [(e.at, e.reason, *MARKERS[e.reason]) for e in t.events if e.reason in MARKERS]
    for at, label, color in (
        (t.fault_injected_at, "fault on", "tab:red"),
        (t.fault_cleared_at, "fault off", "tab:green"),
    ):
        if at is not None:
            moments.append((at, label, color, "--"))
    return moments


def _mark(axis: Any, t: Timeline) -> None:
    for at, _, color, style in _moments(t):
        axis.axvline(at, color=color, linestyle=style, linewidth=1)


def _label(axis: Any, t: Timeline) -> None:
    """Names above the top plot, stacked when moments are close together."""
    shown = sorted(m for m in _moments(t) if m[1] not in ("StepAdvanced", "Started"))
    last_at, level = float("-inf"), 0
    for at, label, color, _ in shown:
        level = level + 1 if at - last_at < 6 else 0
        last_at = at
        axis.annotate(
            label, (at, 1.01 + 0.09 * (level % 3)), xycoords=("data", "axes fraction"),
            fontsize=7, color=color,
        )  # fmt: skip


def _pct(value: float | None) -> float:
    return float("nan") if value is None else 100 * value


def _ms(value: float | None) -> float:
    return float("nan") if value is None else 1000 * value

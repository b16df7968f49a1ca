"""How a replay is shown: the timeline the operator would have produced, how often each
rule was Pass, Fail, Inconclusive and Error, and the outcome; as text for people and as
JSON for scripts; and, for two replays of the same range, where their decisions differ.

Every report says plainly what a replay is: the metrics are what really happened (under
the routing share that was live then), the percentages are what the replayed decisions
would have set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingestion_operator.analysis import LATENCY_QUANTILE, Verdict
from ingestion_operator.analysis.numbers import exact
from ingestion_operator.health import span
from ingestion_operator.plugin import table
from ingestion_operator.replay.engine import Move, Point, Replay
from ingestion_operator.replay.history import iso
from ingestion_operator.spec import Judge, RolloutSpec

NOTE = (
    "The metrics are what really happened, under the routing share that was live then; "
    "the percentages are what these decisions would have set."
)
ASSUMED = (
    "Assumed: the worker Deployments were available at every raise, and nobody promoted, "
    "aborted, retried or edited the rollout during the range."
)


@dataclass(frozen=True)
class Context:
    """What was replayed, for a report's header."""

    rollout: str
    label: str  # what this spec is, next to another in a comparison ("" alone)
    prometheus: str
    semantics: str  # how increase() was computed, when the judge needed it ("" if not)
    start: datetime
    end: datetime
    step: int
    requests: int


def describe(spec: RolloutSpec) -> str:
    """The judge and the limits that decide, in one line."""
    analysis, limits = spec.analysis, spec.analysis.thresholds
    quantile = f"p{limits[LATENCY_QUANTILE] * 100:g}"
    judged = (
        f"alpha {exact(analysis.alpha)}"
        if analysis.judge == Judge.SEQUENTIAL
        else f"window {analysis.window}, minSampleCount {analysis.min_sample_count}"
    )
    return (
        f"judge {analysis.judge.value} ({judged}), maxErrorRate {exact(limits['maxErrorRate'])}, "
        f"maxLatencyRatio {exact(limits['maxLatencyRatio'])} at {quantile}, "
        f"failureLimit {analysis.failure_limit}, steps {list(spec.plan)} "
        f"of {span(spec.step_duration)}"
    )


def outcome(replay: Replay) -> str:
    """Where the rollout ended, when, and why."""
    final = replay.final
    if final is None:
        return "nothing was replayed"
    start = replay.points[0].at
    last = next((m for m in reversed(replay.timeline) if m.phase == final.phase), None)
    if last is None:
        return f"{final.phase} at {final.percentage}% at the end of the range"
    when = f"{iso(last.at)} ({span(last.at - start)} after the start)"
    return f"{final.phase} at {final.percentage}% since {when}: {last.message}"


def timeline_rows(moves: list[Move]) -> list[list[str]]:
    return [
        [iso(m.at), m.reason, f"{m.from_percentage}% -> {m.to_percentage}%", m.phase, m.message]
        for m in moves
    ]


def render_text(replay: Replay, context: Context, title: str = "") -> str:
    """The header, the timeline, the per-rule summary and the outcome."""
    heading = f"{title}: what-if replay" if title else "What-if replay"
    requests = f"{context.requests} request{'' if context.requests == 1 else 's'}"
    lines = [
        f"{heading} of {context.rollout} from {iso(context.start)} to {iso(context.end)} "
        f"every {span_seconds(context.step)}",
        f"  {describe(replay.spec)}",
        f"  Prometheus {context.prometheus}: {len(replay.points)} instants, "
        f"{len(replay.analyses)} analyses, {requests}"
        + (f"; increase() as {context.semantics}" if context.semantics else ""),
        f"  {NOTE}",
        f"  {ASSUMED}",
        "",
    ]
    rows = timeline_rows(replay.timeline)
    lines.append(table([["TIME", "EVENT", "MOVE", "PHASE", "DETAIL"], *rows]) if rows else "")
    summary = replay.summary()
    head = ["RULE", *(v.value.upper() for v in Verdict)]
    counts = [[name, *(str(c[v.value]) for v in Verdict)] for name, c in summary.items()]
    lines += ["", table([head, *counts]), "", f"Outcome: {outcome(replay)}"]
    return "\n".join(lines)


def render_json(replay: Replay, context: Context) -> dict[str, Any]:
    """The same, for scripts (times in RFC 3339, UTC)."""
    final = replay.final
    return {
        "rollout": context.rollout,
        "label": context.label,
        "spec": describe(replay.spec),
        "prometheus": context.prometheus,
        "increaseSemantics": context.semantics or None,
        "from": iso(context.start),
        "to": iso(context.end),
        "stepSeconds": context.step,
        "instants": len(replay.points),
        "analyses": len(replay.analyses),
        "requests": context.requests,
        "note": NOTE,
        "assumed": ASSUMED,
        "timeline": [move_json(m) for m in replay.timeline],
        "rules": replay.summary(),
        "final": point_json(final) if final else None,
        "outcome": outcome(replay),
    }


def move_json(move: Move) -> dict[str, Any]:
    return {
        "at": iso(move.at),
        "type": move.type,
        "reason": move.reason,
        "fromPercentage": move.from_percentage,
        "toPercentage": move.to_percentage,
        "phase": move.phase.value,
        "message": move.message,
    }


def point_json(point: Point) -> dict[str, Any]:
    return {"at": iso(point.at), "percentage": point.percentage, "phase": point.phase.value}


@dataclass(frozen=True)
class Difference:
    """A move one replay made at an instant and the other did not."""

    at: datetime
    a: Move | None
    b: Move | None


def differences(a: Replay, b: Replay) -> list[Difference]:
    """The moves that are not in both timelines (same instant, reason and percentages)."""
    keys_a, keys_b = {m.key for m in a.timeline}, {m.key for m in b.timeline}
    only = [Difference(m.at, m, None) for m in a.timeline if m.key not in keys_b]
    only += [Difference(m.at, None, m) for m in b.timeline if m.key not in keys_a]
    return sorted(only, key=lambda d: (d.at, d.a is None))


def divergence(a: Replay, b: Replay) -> tuple[Point, Point] | None:
    """Where the two replays first stood differently (percentage or phase)."""
    for pa, pb in zip(a.points, b.points, strict=False):
        if (pa.percentage, pa.phase) != (pb.percentage, pb.phase):
            return pa, pb
    return None


def verdict_line(a: Replay, b: Replay) -> str:
    """The headline: how the two outcomes differ (e.g. which rolled back earlier)."""
    end_a, end_b = _last(a), _last(b)
    if end_a is None or end_b is None or a.final is None or b.final is None:
        return "no outcome to compare"
    if (a.final.phase, end_a.at) == (b.final.phase, end_b.at):
        return f"both ended {a.final.phase} at the same instant"
    if a.final.phase == b.final.phase:
        first, gap = (
            ("B", end_a.at - end_b.at) if end_b.at < end_a.at else ("A", end_b.at - end_a.at)
        )
        return f"both ended {a.final.phase}; {first} got there {span(gap)} earlier"
    return f"A ended {a.final.phase} at {iso(end_a.at)}; B ended {b.final.phase} at {iso(end_b.at)}"


def _last(replay: Replay) -> Move | None:
    final = replay.final
    if final is None:
        return None
    return next((m for m in reversed(replay.timeline) if m.phase == final.phase), None)


def render_comparison(a: Replay, b: Replay, context_a: Context, context_b: Context) -> str:
    """Both replays, then where their decisions differ and how their outcomes compare."""
    lines = [
        render_text(a, context_a, f"A ({context_a.label})"),
        "",
        render_text(b, context_b, f"B ({context_b.label})"),
        "",
        "Where the decisions differ (A: " + context_a.label + ", B: " + context_b.label + "):",
    ]
    found = differences(a, b)
    for difference in found:
        side, move = ("A", difference.a) if difference.a else ("B", difference.b)
        assert move is not None
        lines.append(
            f"  {iso(move.at)}  {side}: {move.reason} {move.from_percentage}% -> "
            f"{move.to_percentage}% ({move.message})"
        )
    if not found:
        lines.append("  nowhere: the same moves at the same instants")
    split = divergence(a, b)
    if split is not None:
        pa, pb = split
        lines.append(
            f"First divergence at {iso(pa.at)}: A {pa.phase} at {pa.percentage}%, "
            f"B {pb.phase} at {pb.percentage}%"
        )
    lines.append(f"Result: {verdict_line(a, b)}")
    return "\n".join(lines)


def comparison_json(a: Replay, b: Replay, context_a: Context, context_b: Context) -> dict[str, Any]:
    split = divergence(a, b)
    return {
        "a": render_json(a, context_a),
        "b": render_json(b, context_b),
        "differences": [
            {
                "at": iso(d.at),
                "a": move_json(d.a) if d.a else None,
                "b": move_json(d.b) if d.b else None,
            }
            for d in differences(a, b)
        ],
        "firstDivergence": iso(split[0].at) if split else None,
        "result": verdict_line(a, b),
    }


def span_seconds(seconds: int) -> str:
    return span(timedelta(seconds=seconds))

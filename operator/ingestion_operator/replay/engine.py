"""The operator's loop, replayed: every instant of a past range goes through the same
`decide` (the analysis due check, the judge the spec names, `next_action`, the pre-flight
before the first shift), the same workers gate and the same status projection as a live
reconcile (handlers.reconcile), with the history's answers in place of live queries.

What evolves exactly as it would have: the phase, the live percentage, the step and its
start, the failure and error counters, `healthySince` and the evidence since the step
began (its start is the replayed step's start), because they are read back from the
replayed status (`RolloutState.from_status`) at every instant, as the operator reads its
stored status. What cannot be replayed, and is assumed:

- the traffic: the metrics are what really happened, under whatever routing share was
  live then; the percentages here are what these decisions would have set;
- the worker Deployments: always available (a raise never waits for Pods);
- people: no promote/abort/retry annotations and no spec edits during the range, so a
  rollback or a completion is where the story ends (the operator keeps analysing after a
  rollback, and so does the replay).

The rollout starts at the first instant (phase Pending, as if applied then) and the loop
ticks once per instant: with the grid's step equal to the spec's analysis interval (the
default) every tick analyses, as the operator does when its timer is shorter than the
interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ingestion_operator import status
from ingestion_operator.analysis import RULES, AnalysisResult, Measurement, Verdict
from ingestion_operator.decisions import Decision
from ingestion_operator.handlers import Measure, decide
from ingestion_operator.readiness import hold_for_workers
from ingestion_operator.spec import AnalysisSpec, Phase, RolloutSpec, RolloutState

#: metadata.generation of the replayed rollout (no spec edits during a replay).
GENERATION = 1
#: status.history entries kept (the CRD's bound); the replay's timeline is kept apart.
HISTORY_LIMIT = status.MAX_HISTORY

type Source = Callable[[int, timedelta | None], dict[str, Measurement]]


@dataclass(frozen=True)
class Move:
    """One line of the timeline: a decision that posted an Event or moved the rollout."""

    at: datetime
    type: str  # Normal | Warning
    reason: str  # the Event's reason (Started, StepAdvanced, RolledBack, ...)
    from_percentage: int
    to_percentage: int
    phase: Phase
    message: str

    @property
    def key(self) -> tuple[datetime, str, int, int]:
        return (self.at, self.reason, self.from_percentage, self.to_percentage)


@dataclass(frozen=True)
class Point:
    """Where the replayed rollout stood after an instant."""

    at: datetime
    percentage: int
    phase: Phase


@dataclass
class Replay:
    """What the operator would have done: its Events and moves, its analyses, its status."""

    spec: RolloutSpec
    timeline: list[Move] = field(default_factory=list)
    analyses: list[AnalysisResult] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, int]]:
        """How often each rule was Pass, Fail, Inconclusive and Error over the analyses."""
        counts = {rule.name: Counter[str]() for rule in RULES}
        for analysis in self.analyses:
            for metric in analysis.metrics:
                counts.setdefault(metric.name, Counter())[metric.verdict.value] += 1
        return {name: {v.value: seen[v.value] for v in Verdict} for name, seen in counts.items()}

    @property
    def final(self) -> Point | None:
        return self.points[-1] if self.points else None

    def record(
        self,
        now: datetime,
        before: RolloutState,
        decision: Decision,
        analysis: AnalysisResult | None,
    ) -> None:
        if analysis is not None:
            self.analyses.append(analysis)
        after = decision.state
        moved = (before.percentage, before.phase) != (after.percentage, after.phase)
        if decision.event is not None or moved:
            kind = decision.event.type if decision.event else "Normal"
            reason = decision.event.reason if decision.event else decision.kind.value
            self.timeline.append(
                Move(
                    now,
                    kind,
                    reason,
                    before.percentage,
                    after.percentage,
                    after.phase,
                    decision.message,
                )
            )
        self.points.append(Point(now, after.percentage, after.phase))


async def replay(spec: RolloutSpec, instants: Sequence[datetime], source: Source) -> Replay:
    """The rollout applied at instants[0] and reconciled at every instant; `source(i, age)`
    answers the queries at instant i for a step of that age (None: no step)."""
    result = Replay(spec)
    stored: dict[str, Any] = {}
    for index, now in enumerate(instants):
        stored = await tick(spec, stored, now, answering(source, index), result)
    result.status = stored
    return result


def answering(source: Source, index: int) -> Measure:
    """The live `measure` at instant `index`: the history's answers."""

    async def measure(_: AnalysisSpec, age: timedelta | None) -> dict[str, Measurement]:
        return source(index, age)

    return measure


async def tick(
    spec: RolloutSpec, stored: dict[str, Any], now: datetime, measure: Measure, result: Replay
) -> dict[str, Any]:
    """One reconcile without a cluster: decide, pass the workers gate with every worker
    available, project the status and store it as the API server would (a merge patch)."""
    before = RolloutState.from_status(stored)
    decision, _, analysis = await decide(spec, before, stored, now, None, measure_with=measure)
    if decision.percentage > before.percentage:
        decision = hold_for_workers(spec, decision, decision.replicas, now)
    observed = status.Observed(before, stored, now, len(spec.plan), analysis, GENERATION)
    stored = merge_patch(stored, status.decided(observed, decision, HISTORY_LIMIT))
    result.record(now, before, decision, analysis)
    return stored


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`target` with a JSON merge patch (RFC 7386) applied: null removes a key, objects
    merge, anything else replaces (how kopf's status patch lands on the stored status)."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged

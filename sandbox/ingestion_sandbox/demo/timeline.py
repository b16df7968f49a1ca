"""What happened during a demo run, and whether it is the story the demo promises.

The demo doubles as a smoke test, so "it ran" is not enough: the exit status must say
whether traffic walked 10% -> 50%, whether the injected fault (and not something
else, earlier) was rolled back with an Event naming the error rate, whether the retry
completed at 100%, and whether every document reached an end. `check_story` is a pure
function of the recorded Timeline, so each way the story can fail is unit-tested on
a hand-made timeline, and a summary.json can be re-checked after the fact.

Times are seconds since the demo started, as the supervisor observed them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ingestion_sandbox.demo.traffic import Tally

ROLLED_BACK, COMPLETED, RETRY = "RolledBack", "RolloutCompleted", "Retry"
MILESTONES = ("Started", "StepAdvanced", ROLLED_BACK, RETRY, COMPLETED)


@dataclass
class RolloutEvent:
    at: float
    type: str
    reason: str
    message: str


@dataclass
class Timeline:
    weights: list[tuple[float, int]] = field(default_factory=list)  # routing % changes
    events: list[RolloutEvent] = field(default_factory=list)
    fault_injected_at: float | None = None
    fault_cleared_at: float | None = None
    retried_at: float | None = None
    first_injected_failure_at: float | None = None  # first Temporal doc failed by the fault
    final_phase: str | None = None
    documents: Tally = field(default_factory=Tally)
    notes: list[str] = field(default_factory=list)  # why the driver stopped early, if it did

    def record_weight(self, at: float, weight: int) -> bool:
        if self.weights and self.weights[-1][1] == weight:
            return False
        self.weights.append((at, weight))
        return True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timeline:
        return cls(
            weights=[(float(at), int(w)) for at, w in data.get("weights", [])],
            events=[RolloutEvent(**e) for e in data.get("events", [])],
            fault_injected_at=data.get("fault_injected_at"),
            fault_cleared_at=data.get("fault_cleared_at"),
            retried_at=data.get("retried_at"),
            first_injected_failure_at=data.get("first_injected_failure_at"),
            final_phase=data.get("final_phase"),
            documents=Tally(**data.get("documents", {})),
            notes=list(data.get("notes", [])),
        )


def rollbacks(
    t: Timeline, after: float | None = None, before: float | None = None
) -> list[RolloutEvent]:
    return [
        e
        for e in t.events
        if e.reason == ROLLED_BACK
        and (after is None or e.at >= after)
        and (before is None or e.at < before)
    ]


def back_to_zero_at(t: Timeline) -> float | None:
    """When routing first fell to 0% after the fault was injected."""
    if t.fault_injected_at is None:
        return None
    return next((at for at, w in t.weights if at >= t.fault_injected_at and w == 0), None)


def detection_seconds(t: Timeline) -> float | None:
    """First Temporal document failed by the fault -> routing at 0%."""
    zero = back_to_zero_at(t)
    if zero is None or t.first_injected_failure_at is None:
        return None
    return zero - t.first_injected_failure_at


def weights_between(t: Timeline, start: float | None, end: float | None) -> list[int]:
    return [
        w for at, w in t.weights if (start is None or at >= start) and (end is None or at < end)
    ]


def check_story(t: Timeline) -> list[str]:
    """Everything that did not happen as the demo tells it; empty means the story held."""
    stopped = [f"the demo stopped early: {note}" for note in t.notes]
    return [*stopped, *_walk(t), *_fault(t), *_retry(t), *_accounting(t)]


def _walk(t: Timeline) -> list[str]:
    chapter = "chapter 1 (walk 10% -> 50%)"
    problems = []
    seen = weights_between(t, None, t.fault_injected_at)
    if 10 not in seen or 50 not in seen or seen.index(10) > seen.index(50):
        problems.append(f"{chapter}: routing never went 10% then 50% (seen: {seen or 'nothing'})")
    early = rollbacks(t, before=t.fault_injected_at)
    if early:
        problems.append(f"{chapter}: rolled back before any fault was injected: {early[0].message}")
    return problems


def _fault(t: Timeline) -> list[str]:
    chapter = "chapter 2 (fault -> automatic rollback)"
    if t.fault_injected_at is None:
        return [f"{chapter}: the fault was never injected"]
    problems = []
    if not t.documents.failed_injected.get("temporal"):
        problems.append(f"{chapter}: no Temporal document failed from the injected fault")
    found = rollbacks(t, after=t.fault_injected_at, before=t.retried_at)
    if not found:
        problems.append(f"{chapter}: no RolledBack Event after the fault was injected")
    elif not names_error_rate(found[0].message):
        problems.append(f"{chapter}: the rollback does not name errorRate: {found[0].message}")
    if back_to_zero_at(t) is None:
        problems.append(f"{chapter}: routing never returned to 0% after the fault")
    return problems


def names_error_rate(message: str) -> bool:
    """The threshold judge says "errorRate 0.12 > 0.05", the sequential judge
    "error rate 0.3 [0.12, 0.5] after 30 documents > 0.05"."""
    return "errorRate" in message or "error rate" in message


def _retry(t: Timeline) -> list[str]:
    chapter = "chapter 3 (clear the fault, retry, complete at 100%)"
    if t.retried_at is None:
        return [f"{chapter}: the rollout was never retried"]
    problems = []
    if t.fault_cleared_at is None or t.fault_cleared_at > t.retried_at:
        problems.append(f"{chapter}: retried before the fault was cleared")
    again = rollbacks(t, after=t.retried_at)
    if again:
        problems.append(f"{chapter}: rolled back again after the retry: {again[0].message}")
    if 100 not in weights_between(t, t.retried_at, None):
        problems.append(f"{chapter}: routing never reached 100% after the retry")
    if not [e for e in t.events if e.reason == COMPLETED and e.at >= t.retried_at]:
        problems.append(f"{chapter}: no RolloutCompleted Event after the retry")
    if t.final_phase != "Completed":
        problems.append(f"{chapter}: the rollout ended in phase {t.final_phase}, not Completed")
    return problems


def _accounting(t: Timeline) -> list[str]:
    chapter = "chapter 4 (every document accounted for)"
    d = t.documents
    problems = []
    if d.submitted == 0:
        problems.append(f"{chapter}: no document was submitted")
    if d.unfinished:
        problems.append(
            f"{chapter}: {d.unfinished} of {d.submitted} documents lost (never reached an end)"
        )
    for path in ("legacy", "temporal"):
        if d.submitted and not d.succeeded.get(path):
            problems.append(f"{chapter}: no document was ingested on the {path} path")
    return problems

"""The status a decision stands for, in the CRD's field names: the projection that
`RolloutState.from_status` (spec.py) reads back.

Pure, like the decisions: the handlers hand in the decision, the stored status and the
clock, and patch what comes out. Only fields whose value changed are returned, so a
quiet tick writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestion_operator.analysis import AnalysisResult
from ingestion_operator.decisions import ActionKind, Decision
from ingestion_operator.spec import Phase, RolloutState

#: Condition type -> the phases in which it is True (`kubectl wait --for=condition=...`).
CONDITIONS = {
    "Progressing": (Phase.PROGRESSING,),
    "Completed": (Phase.COMPLETED,),
    "RolledBack": (Phase.ROLLED_BACK,),
}
#: The CRD's bound on status.history.
MAX_HISTORY = 50
# The CRD's bounds on the strings copied from a decision.
_HISTORY_MESSAGE, _CONDITION_MESSAGE = 4096, 32768


@dataclass(frozen=True)
class Observed:
    """What one reconcile saw, besides the decision it led to."""

    before: RolloutState
    stored: Mapping[str, Any]
    now: datetime
    steps_total: int
    analysis: AnalysisResult | None
    generation: int


def changes(wanted: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `wanted` that differ from the stored status."""
    return {key: value for key, value in wanted.items() if stored.get(key) != value}


def decided(observed: Observed, decision: Decision, history_limit: int) -> dict[str, Any]:
    """The status fields to patch after a decision (only those that changed)."""
    wanted = status_fields(observed, decision, history_limit)
    wanted["observedGeneration"] = observed.generation
    wanted["conditions"] = conditions(decision, observed.stored, observed.now)
    return changes(wanted, observed.stored)


def failed(message: str, reason: str, generation: int) -> dict[str, Any]:
    """Phase Failed with its cause (InvalidSpec, MissingReference) and message, found by the
    handlers before any decision could be made."""
    return {
        "phase": Phase.FAILED.value,
        "message": message,
        "reason": reason,
        "observedGeneration": generation,
    }


def status_fields(observed: Observed, decision: Decision, history_limit: int) -> dict[str, Any]:
    """The status a decision stands for, in the CRD's field names."""
    state, steps = decision.state, observed.steps_total
    fields: dict[str, Any] = {
        "phase": state.phase.value,
        "currentStepIndex": state.step_index,
        "currentPercentage": state.percentage,
        "stepsTotal": steps,
        "stepLabel": f"{state.step_index + 1}/{steps}",
        "failureCount": state.failure_count,
        "consecutiveErrors": state.consecutive_errors,
        "history": history(observed, decision, history_limit),
    }
    if state.step_started_at is not None:
        fields["stepStartedAt"] = state.step_started_at.isoformat()
    # None removes a field (merge patch) once its cause or its run is over.
    fields["reason"] = state.reason.value if state.reason else None
    fields["healthySince"] = _time(state.healthy_since)
    fields["workersWaitingSince"] = _time(state.workers_waiting_since)
    if observed.analysis is not None:
        fields["lastAnalysis"] = observed.analysis.to_status()
    # A quiet tick after a rollback or completion keeps the message that says why; a wait
    # says something new only with a fresh analysis or while it waits for workers.
    live = state.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PENDING)
    news = observed.analysis is not None or state.workers_waiting_since is not None
    if decision.kind != ActionKind.WAIT or (news and live):
        fields["message"] = decision.message
    return fields


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def history(observed: Observed, decision: Decision, limit: int) -> list[dict[str, Any]]:
    """Append a change of percentage or phase; keep the latest `limit` entries."""
    entries = list(observed.stored.get("history") or [])
    before, after = observed.before, decision.state
    if (before.percentage, before.phase) == (after.percentage, after.phase):
        return entries
    entry = {
        "at": observed.now.isoformat(),
        "fromPercentage": before.percentage,
        "toPercentage": after.percentage,
        "phase": after.phase.value,
        "reason": decision.event.reason if decision.event else decision.kind.value,
        "message": decision.message[:_HISTORY_MESSAGE],
    }
    kept = max(1, min(limit, MAX_HISTORY))
    return [*entries, entry][-kept:]


def conditions(
    decision: Decision, stored: Mapping[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """Progressing/Completed/RolledBack as True/False; a transition time moves on change."""
    previous = {c.get("type"): c for c in stored.get("conditions") or []}
    reason = decision.event.reason if decision.event else decision.kind.value
    result = []
    for kind, phases in CONDITIONS.items():
        value = "True" if decision.state.phase in phases else "False"
        old = previous.get(kind) or {}
        changed = old.get("status") != value
        result.append(
            {
                "type": kind,
                "status": value,
                "reason": reason if changed else old.get("reason", reason),
                "message": decision.message[:_CONDITION_MESSAGE]
                if changed
                else old.get("message", ""),
                "lastTransitionTime": now.isoformat() if changed else old["lastTransitionTime"],
            }
        )
    return result

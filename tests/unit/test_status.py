"""The status projection (pure) and the handlers' registration with start-up settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion_operator import status
from ingestion_operator.decisions import ActionKind, next_action
from ingestion_operator.handlers import registry
from ingestion_operator.settings import RolloutOperatorSettings
from ingestion_operator.spec import Phase, RolloutSpec, RolloutState, WorkerTarget

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = RolloutSpec(workers=(WorkerTarget("w", 1, 10),))


def observed(before: RolloutState, stored: dict[str, Any], now: datetime) -> status.Observed:
    return status.Observed(before, stored, now, len(SPEC.plan), None, 3)


def test_a_start_writes_the_step_the_history_and_the_conditions() -> None:
    decision = next_action(SPEC, RolloutState(), None, T0)
    patch = status.decided(observed(RolloutState(), {}, T0), decision, history_limit=50)
    assert (patch["phase"], patch["currentPercentage"], patch["stepLabel"]) == (
        "Progressing",
        10,
        "1/3",
    )
    assert patch["observedGeneration"] == 3
    assert [(h["fromPercentage"], h["toPercentage"]) for h in patch["history"]] == [(0, 10)]
    progressing = next(c for c in patch["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["lastTransitionTime"]) == ("True", T0.isoformat())


def test_a_quiet_tick_writes_nothing() -> None:
    start = next_action(SPEC, RolloutState(), None, T0)
    stored = status.decided(observed(RolloutState(), {}, T0), start, history_limit=50)
    later = T0 + timedelta(seconds=5)
    wait = next_action(SPEC, start.state, None, later)
    assert wait.kind == ActionKind.WAIT
    assert status.decided(observed(start.state, stored, later), wait, history_limit=50) == {}


def test_history_keeps_the_latest_entries_only() -> None:
    old = [{"at": T0.isoformat(), "toPercentage": i} for i in range(5)]
    decision = next_action(SPEC, RolloutState(), None, T0)
    fields = status.status_fields(observed(RolloutState(), {"history": old}, T0), decision, 3)
    assert [h["toPercentage"] for h in fields["history"]] == [3, 4, 10]


def test_a_decision_carries_the_replicas_of_every_worker() -> None:
    spec = RolloutSpec(workers=(WorkerTarget("a", 1, 10), WorkerTarget("b", 2, 3)))
    decision = next_action(spec, RolloutState(), None, T0)
    assert decision.percentage == 10
    assert decision.replicas == {"a": 1, "b": 2}
    rolled_back = RolloutState(Phase.ROLLED_BACK, -1, 0)
    assert next_action(spec, rolled_back, None, T0).replicas == {"a": 1, "b": 2}


def test_the_handlers_take_the_timer_interval_from_the_settings_at_start_up() -> None:
    handlers = registry(RolloutOperatorSettings(timer_interval_seconds=7.0))
    timers = handlers._spawning.get_all_handlers()  # kopf has no public listing
    assert [(t.id, t.interval) for t in timers] == [("reconcile", 7.0)]

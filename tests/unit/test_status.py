"""The status projection (pure) and the handlers' registration with start-up settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion_operator import status
from ingestion_operator.analysis import AnalysisResult, MetricResult, Preflight, Verdict
from ingestion_operator.decisions import ActionKind, Decision
from ingestion_operator.decisions import next_action as decide
from ingestion_operator.handlers import registry
from ingestion_operator.readiness import hold_for_workers
from ingestion_operator.settings import RolloutOperatorSettings
from ingestion_operator.spec import Phase, Reason, RolloutSpec, RolloutState, WorkerTarget

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = RolloutSpec(workers=(WorkerTarget("w", 1, 10),))


def next_action(spec: RolloutSpec, state: RolloutState, _: None, now: datetime) -> Decision:
    """The decision, with a passing pre-flight (decisions ask for one before a start)."""
    return decide(spec, state, None, now, preflight=Preflight())


def analysis_passing(at: datetime) -> AnalysisResult:
    metric = MetricResult("errorRate", 0.0, 0.05, Verdict.PASS, "errorRate 0 <= 0.05")
    return AnalysisResult(at, Verdict.PASS, (metric,), 100.0)


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


def test_a_wait_for_workers_is_written_with_its_reason_and_cleared_when_it_ends() -> None:
    # given a start held because the worker has no available replica yet
    start = next_action(SPEC, RolloutState(), None, T0)
    held = hold_for_workers(SPEC, start, {"w": 0}, T0)
    patch = status.decided(observed(RolloutState(), {}, T0), held, history_limit=50)
    # then the status says what it waits for, since when, and nothing moved
    assert patch["workersWaitingSince"] == T0.isoformat()
    assert "for workers before 0% -> 10%: w 0/1 available" in patch["message"]
    assert patch["currentPercentage"] == 0 and patch["phase"] == "Pending"
    assert not patch.get("history")
    # when the worker is available, the start goes through and the wait is removed
    stored = {**patch, "phase": "Pending", "currentPercentage": 0}
    later = T0 + timedelta(seconds=3)
    moved = hold_for_workers(SPEC, next_action(SPEC, held.state, None, later), {"w": 1}, later)
    after = status.decided(observed(held.state, stored, later), moved, history_limit=50)
    assert after["workersWaitingSince"] is None and after["currentPercentage"] == 10


def test_the_reason_and_the_healthy_run_are_written_and_removed_with_their_cause() -> None:
    paused = RolloutState(Phase.PAUSED, 0, 10, T0, reason=Reason.ANALYSIS_ERRORS)
    stored = {"phase": "Paused", "reason": "AnalysisErrors", "currentPercentage": 10}
    resumed = decide(SPEC, paused, analysis_passing(T0), T0)
    patch = status.decided(observed(paused, stored, T0), resumed, history_limit=50)
    assert patch["reason"] is None and patch["healthySince"] == T0.isoformat()
    assert patch["phase"] == "Progressing" and "Pass" in patch["message"]

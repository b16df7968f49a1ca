"""Every rollout transition, decided without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ingestion_operator.analysis import AnalysisResult, MetricResult, Verdict
from ingestion_operator.decisions import (
    ActionKind,
    Command,
    desired_replicas,
    next_action,
    step_index_for,
)
from ingestion_operator.spec import AnalysisSpec, OnError, Phase, RolloutSpec, RolloutState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = RolloutSpec(step_duration=timedelta(minutes=10))
RULES = ("errorRate", "latencyRatio", "queueDepth", "dbConnectionErrorsPerMinute")


def analysis(verdict: Verdict = Verdict.PASS, **by_metric: Verdict) -> AnalysisResult:
    metrics = tuple(
        MetricResult(name, 1.0, 2.0, by_metric.get(name, Verdict.PASS), f"{name} message")
        for name in RULES
    )
    if verdict != Verdict.PASS and not by_metric:
        metrics = (
            MetricResult("errorRate", 0.08, 0.05, verdict, "errorRate 0.08 > 0.05"),
            *metrics[1:],
        )
    return AnalysisResult(T0, verdict, metrics, 100.0)


def at_step(index: int, started: datetime = T0, **kw: object) -> RolloutState:
    return RolloutState(Phase.PROGRESSING, index, SPEC.plan[index], started, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pct", "lo", "hi", "want"),
    [
        (0, 1, 10, 1),
        (10, 1, 10, 1),
        (50, 1, 10, 5),
        (51, 1, 10, 6),
        (100, 1, 10, 10),
        (100, 2, 3, 3),
        (0, 0, 4, 0),
        (1, 0, 4, 1),
    ],
)
def test_desired_replicas_is_ceil_of_share_clamped(pct: int, lo: int, hi: int, want: int):
    assert desired_replicas(pct, lo, hi) == want


def test_plan_skips_steps_above_the_target():
    assert RolloutSpec(target_percentage=30).plan == (10, 30)
    assert RolloutSpec(target_percentage=50).plan == (10, 50)
    assert RolloutSpec(target_percentage=0).plan == ()
    assert step_index_for((10, 50, 100), 60) == 1


def test_pending_starts_at_the_first_step():
    decision = next_action(SPEC, RolloutState(), None, T0)
    assert decision.kind == ActionKind.START
    assert (decision.state.phase, decision.percentage, decision.state.step_started_at) == (
        Phase.PROGRESSING,
        10,
        T0,
    )


def test_healthy_step_waits_for_its_duration_then_advances():
    state = at_step(0)
    early = next_action(SPEC, state, analysis(), T0 + timedelta(minutes=9, seconds=59))
    assert early.kind == ActionKind.WAIT and early.percentage == 10
    due = next_action(SPEC, state, analysis(), T0 + timedelta(minutes=10))
    assert due.kind == ActionKind.ADVANCE and due.percentage == 50
    assert due.event and due.event.reason == "StepAdvanced" and due.event.message == "10% -> 50%"
    assert due.state.step_started_at == T0 + timedelta(minutes=10)


def test_last_healthy_step_completes():
    decision = next_action(SPEC, at_step(2), analysis(), T0 + timedelta(hours=1))
    assert decision.kind == ActionKind.COMPLETE and decision.state.phase == Phase.COMPLETED
    assert decision.event and decision.event.reason == "RolloutCompleted"


def test_restarted_operator_keeps_the_step_timer():
    # the same stored status and clock give the same answer, however often asked
    state = at_step(1, started=T0)
    first = next_action(SPEC, state, analysis(), T0 + timedelta(minutes=5))
    again = next_action(SPEC, state, analysis(), T0 + timedelta(minutes=5))
    assert first == again and first.kind == ActionKind.WAIT
    assert first.state.step_started_at == T0


def test_failure_past_the_limit_rolls_back_naming_the_metric():
    decision = next_action(SPEC, at_step(1), analysis(Verdict.FAIL), T0 + timedelta(minutes=1))
    assert decision.kind == ActionKind.ROLLBACK and decision.percentage == 0
    assert decision.state.phase == Phase.ROLLED_BACK
    assert decision.event and decision.event.type == "Warning"
    assert decision.event.reason == "RolledBack"
    assert (
        "errorRate 0.08 > 0.05" in decision.event.message and "50% -> 0%" in decision.event.message
    )


def test_failures_within_the_limit_hold_and_count():
    spec = RolloutSpec(analysis=AnalysisSpec(failure_limit=1))
    first = next_action(spec, at_step(1), analysis(Verdict.FAIL), T0)
    assert first.kind == ActionKind.WAIT and first.state.failure_count == 1
    second = next_action(spec, first.state, analysis(Verdict.FAIL), T0)
    assert second.kind == ActionKind.ROLLBACK


def test_inconclusive_never_promotes():
    state = at_step(0)
    decision = next_action(SPEC, state, analysis(Verdict.INCONCLUSIVE), T0 + timedelta(hours=5))
    assert decision.kind == ActionKind.WAIT and decision.percentage == 10


def test_missing_legacy_latency_does_not_block_the_final_step():
    final = analysis(Verdict.INCONCLUSIVE, latencyRatio=Verdict.INCONCLUSIVE)
    decision = next_action(SPEC, at_step(2), final, T0 + timedelta(hours=1))
    assert decision.kind == ActionKind.COMPLETE
    blocked = next_action(SPEC, at_step(1), final, T0 + timedelta(hours=1))
    assert blocked.kind == ActionKind.WAIT


def test_errors_up_to_the_limit_hold_then_pause_then_healthy_resumes():
    spec = RolloutSpec(analysis=AnalysisSpec(consecutive_error_limit=2))
    state = at_step(1)
    for expected in (1, 2):
        decision = next_action(spec, state, analysis(Verdict.ERROR), T0 + timedelta(hours=1))
        assert decision.kind == ActionKind.WAIT and decision.state.consecutive_errors == expected
        state = decision.state
    paused = next_action(spec, state, analysis(Verdict.ERROR), T0 + timedelta(hours=1))
    assert paused.kind == ActionKind.PAUSE and paused.state.phase == Phase.PAUSED
    assert paused.percentage == 50 and paused.event and paused.event.type == "Warning"
    resumed = next_action(spec, paused.state, analysis(), T0 + timedelta(hours=1))
    assert resumed.kind == ActionKind.RESUME and resumed.state.phase == Phase.PROGRESSING
    assert resumed.state.consecutive_errors == 0 and resumed.percentage == 50


def test_errors_past_the_limit_roll_back_when_on_error_says_so():
    spec = RolloutSpec(analysis=AnalysisSpec(consecutive_error_limit=0, on_error=OnError.ROLLBACK))
    decision = next_action(spec, at_step(1), analysis(Verdict.ERROR), T0)
    assert decision.kind == ActionKind.ROLLBACK and decision.percentage == 0


def test_abort_rolls_back_and_retry_restarts_from_the_first_step():
    aborted = next_action(SPEC, at_step(1), analysis(), T0, Command.ABORT)
    assert aborted.kind == ActionKind.ROLLBACK and aborted.percentage == 0
    idle = next_action(SPEC, aborted.state, analysis(), T0)
    assert idle.kind == ActionKind.WAIT and idle.percentage == 0
    retried = next_action(SPEC, aborted.state, analysis(), T0, Command.RETRY)
    assert retried.kind == ActionKind.START and retried.percentage == 10


def test_promote_skips_the_wait_but_not_a_failure():
    promoted = next_action(SPEC, at_step(0), analysis(Verdict.INCONCLUSIVE), T0, Command.PROMOTE)
    assert promoted.kind == ActionKind.ADVANCE and promoted.percentage == 50
    refused = next_action(SPEC, at_step(0), analysis(Verdict.FAIL), T0, Command.PROMOTE)
    assert refused.kind == ActionKind.ROLLBACK


def test_paused_spec_holds_traffic():
    spec = RolloutSpec(paused=True)
    decision = next_action(spec, at_step(1), analysis(), T0 + timedelta(hours=1))
    assert decision.kind == ActionKind.PAUSE and decision.percentage == 50
    assert next_action(spec, decision.state, analysis(), T0).kind == ActionKind.WAIT


def test_lowering_the_target_moves_traffic_down_at_once():
    spec = RolloutSpec(target_percentage=10)
    decision = next_action(spec, at_step(1), analysis(), T0)
    assert decision.kind == ActionKind.STEP_DOWN and decision.percentage == 10


def test_changed_steps_never_jump_traffic_past_analysis():
    # at 50% when the steps become (20, 60, 100): the next move is to 60, after analysis
    spec = RolloutSpec(steps=(20, 60, 100))
    early = next_action(spec, at_step(1), analysis(), T0 + timedelta(minutes=1))
    assert early.kind == ActionKind.WAIT and early.percentage == 50
    due = next_action(spec, at_step(1), analysis(), T0 + timedelta(minutes=10))
    assert due.percentage == 60


def test_raising_the_target_after_completion_resumes_from_where_it_stands():
    done = RolloutState(Phase.COMPLETED, 1, 50, T0)
    decision = next_action(RolloutSpec(), done, analysis(), T0 + timedelta(hours=1))
    assert decision.kind == ActionKind.RESUME and decision.percentage == 50


def test_failed_waits_until_retried():
    failed = RolloutState(Phase.FAILED, -1, 0, None)
    assert next_action(SPEC, failed, analysis(), T0).kind == ActionKind.WAIT
    retried = next_action(SPEC, failed, analysis(), T0, Command.RETRY)
    assert retried.kind == ActionKind.START and retried.percentage == 10

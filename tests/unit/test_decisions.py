"""Every rollout transition, decided without a cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from ingestion_operator.analysis import AnalysisResult, MetricResult, Preflight, Verdict
from ingestion_operator.decisions import ActionKind, Command, Decision, step_index_for
from ingestion_operator.decisions import next_action as decide
from ingestion_operator.readiness import hold_for_workers
from ingestion_operator.replicas import desired_replicas
from ingestion_operator.spec import (
    AnalysisSpec,
    OnError,
    Phase,
    Reason,
    RolloutSpec,
    RolloutState,
    WorkerTarget,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = RolloutSpec(step_duration=timedelta(minutes=10))
RULES = ("errorRate", "latencyRatio", "queueDepth", "dbConnectionErrorsPerMinute")
PASSED = Preflight()


def next_action(
    spec: RolloutSpec,
    state: RolloutState,
    result: AnalysisResult | None,
    now: datetime,
    command: Command | None = None,
) -> Decision:
    """The decision, with a passing pre-flight when one is asked for (tested apart below)."""
    decision = decide(spec, state, result, now, command)
    if decision.kind == ActionKind.PREFLIGHT:
        return decide(spec, state, result, now, command, PASSED)
    return decision


def analysis(
    verdict: Verdict = Verdict.PASS, at: datetime = T0, **by_metric: Verdict
) -> AnalysisResult:
    metrics = tuple(
        MetricResult(name, 1.0, 2.0, by_metric.get(name, Verdict.PASS), f"{name} message")
        for name in RULES
    )
    if verdict != Verdict.PASS and not by_metric:
        metrics = (
            MetricResult("errorRate", 0.08, 0.05, verdict, "errorRate 0.08 > 0.05"),
            *metrics[1:],
        )
    return AnalysisResult(at, verdict, metrics, 100.0)


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


def test_pending_starts_at_the_first_step_after_a_pre_flight():
    asked = decide(SPEC, RolloutState(), None, T0)
    assert asked.kind == ActionKind.PREFLIGHT and asked.percentage == 0
    decision = decide(SPEC, RolloutState(), None, T0, preflight=PASSED)
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


def test_errors_up_to_the_limit_hold_then_pause_then_only_a_pass_resumes():
    spec = RolloutSpec(analysis=AnalysisSpec(consecutive_error_limit=2))
    state = at_step(1)
    for expected in (1, 2):
        decision = next_action(spec, state, analysis(Verdict.ERROR), T0 + timedelta(hours=1))
        assert decision.kind == ActionKind.WAIT and decision.state.consecutive_errors == expected
        state = decision.state
    paused = next_action(spec, state, analysis(Verdict.ERROR), T0 + timedelta(hours=1))
    assert paused.kind == ActionKind.PAUSE and paused.state.phase == Phase.PAUSED
    assert paused.state.reason == Reason.ANALYSIS_ERRORS
    assert paused.percentage == 50 and paused.event and paused.event.type == "Warning"
    # an Inconclusive analysis is not healthy: still paused, and no Resumed event
    unsure = next_action(spec, paused.state, analysis(Verdict.INCONCLUSIVE), T0)
    assert unsure.kind == ActionKind.WAIT and unsure.state.phase == Phase.PAUSED
    assert unsure.event is None and "Inconclusive, not Pass" in unsure.message
    resumed = next_action(spec, unsure.state, analysis(), T0 + timedelta(hours=1))
    assert resumed.kind == ActionKind.RESUME and resumed.state.phase == Phase.PROGRESSING
    assert resumed.state.consecutive_errors == 0 and resumed.percentage == 50
    assert resumed.state.reason is None
    assert resumed.event and resumed.event.reason == "Resumed"
    assert resumed.event.message == "analysis Pass again: resumed at 50%"


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


def test_paused_spec_holds_traffic_and_unpausing_resumes_at_once():
    spec = RolloutSpec(paused=True)
    decision = next_action(spec, at_step(1), analysis(), T0 + timedelta(hours=1))
    assert decision.kind == ActionKind.PAUSE and decision.percentage == 50
    assert decision.state.reason == Reason.PAUSED_BY_SPEC
    assert next_action(spec, decision.state, analysis(), T0).kind == ActionKind.WAIT
    unpaused = next_action(SPEC, decision.state, None, T0 + timedelta(hours=2))
    assert unpaused.kind == ActionKind.RESUME and unpaused.state.phase == Phase.PROGRESSING
    assert unpaused.event and unpaused.event.reason == "Unpaused"
    assert unpaused.state.healthy_since is None  # time paused does not count


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


# --- issue 16, item 4: a step advances only after a full run of passing analysis ----------


def test_a_step_needs_its_whole_duration_of_passing_analysis_after_an_outage():
    # given a 10-minute step whose analysis passed once, then errored long enough to pause
    spec = RolloutSpec(
        step_duration=timedelta(minutes=10), analysis=AnalysisSpec(consecutive_error_limit=0)
    )
    state = next_action(spec, at_step(0), analysis(at=T0 + timedelta(minutes=1)), T0).state
    assert state.healthy_since == T0 + timedelta(minutes=1)
    minute = timedelta(minutes=1)
    paused = next_action(spec, state, analysis(Verdict.ERROR), T0 + 2 * minute)
    assert paused.state.phase == Phase.PAUSED and paused.state.healthy_since is None
    # when the analysis passes again after 20 minutes (twice the step)
    back = T0 + 22 * minute
    resumed = next_action(spec, paused.state, analysis(at=back), back)
    assert resumed.kind == ActionKind.RESUME and resumed.state.healthy_since == back
    # then the step waits for 10 more minutes of passing analysis, though 22 have gone by
    early = next_action(spec, resumed.state, analysis(at=back + 9 * minute), back + 9 * minute)
    assert early.kind == ActionKind.WAIT and early.percentage == 10
    assert "Pass for 9m of the 10m needed" in early.message
    due = next_action(spec, early.state, analysis(at=back + 10 * minute), back + 10 * minute)
    assert due.kind == ActionKind.ADVANCE and due.percentage == 50


@pytest.mark.parametrize("verdict", [Verdict.INCONCLUSIVE, Verdict.ERROR, Verdict.FAIL])
def test_any_analysis_that_is_not_a_pass_starts_the_healthy_run_again(verdict: Verdict):
    spec = RolloutSpec(analysis=AnalysisSpec(failure_limit=3, consecutive_error_limit=3))
    minute = timedelta(minutes=1)
    state = next_action(spec, at_step(0), analysis(at=T0), T0).state
    broken = next_action(spec, state, analysis(verdict, at=T0 + 5 * minute), T0 + 5 * minute)
    assert broken.state.healthy_since is None and broken.percentage == 10
    again = T0 + 6 * minute
    restarted = next_action(spec, broken.state, analysis(at=again), again)
    assert restarted.state.healthy_since == again
    late = T0 + 11 * minute  # the step is 11 minutes old, the passing run 5
    assert next_action(spec, restarted.state, analysis(at=late), late).kind == ActionKind.WAIT


def test_min_healthy_duration_applies_per_step_and_falls_back_to_the_step_duration():
    spec = RolloutSpec.from_spec(
        {
            "stepDuration": "10m",
            "minHealthyDuration": "2m",
            "stepOverrides": [
                {"step": 50, "minHealthyDuration": "30m"},
                {"step": 100, "duration": "1h"},
            ],
        }
    )
    assert spec.min_healthy_of(10) == timedelta(minutes=2)
    assert spec.min_healthy_of(50) == timedelta(minutes=30)
    assert spec.duration_of(100) == timedelta(hours=1)
    assert RolloutSpec(step_duration=timedelta(minutes=7)).min_healthy_of(10) == timedelta(
        minutes=7
    )
    # a 10-minute step with a 2-minute healthy run needed: the step duration still holds
    state = replace(at_step(0), healthy_since=T0 + timedelta(minutes=7))
    nine = T0 + timedelta(minutes=9)
    assert next_action(spec, state, analysis(at=nine), nine).kind == ActionKind.WAIT
    ten = T0 + timedelta(minutes=10)
    assert next_action(spec, state, analysis(at=ten), ten).kind == ActionKind.ADVANCE


# --- issue 16, item 6: pre-flight before the first shift -----------------------------------


def test_a_failed_pre_flight_refuses_the_start_once_then_starts_when_it_passes():
    refused_by = Preflight(("latencyRatio: no data (the query matched no series)",))
    refused = decide(SPEC, RolloutState(), None, T0, preflight=refused_by)
    assert refused.kind == ActionKind.REFUSE and refused.percentage == 0
    assert (refused.state.phase, refused.state.reason) == (Phase.FAILED, Reason.PREFLIGHT_FAILED)
    assert refused.event and refused.event.type == "Warning"
    assert refused.event.reason == "PreflightFailed"
    assert "latencyRatio: no data" in refused.event.message
    # when asked again, the pre-flight runs again; still refused: no second Event
    assert decide(SPEC, refused.state, None, T0).kind == ActionKind.PREFLIGHT
    again = decide(SPEC, refused.state, None, T0, preflight=refused_by)
    assert again.kind == ActionKind.REFUSE and again.event is None
    started = decide(SPEC, refused.state, None, T0, preflight=PASSED)
    assert started.kind == ActionKind.START and started.percentage == 10
    assert started.state.reason is None


def test_a_retry_after_a_rollback_runs_the_pre_flight_again():
    rolled_back = RolloutState(Phase.ROLLED_BACK, -1, 0)
    asked = decide(SPEC, rolled_back, None, T0, Command.RETRY)
    assert asked.kind == ActionKind.PREFLIGHT
    refused = decide(SPEC, rolled_back, None, T0, Command.RETRY, Preflight(("errorRate: x",)))
    assert refused.kind == ActionKind.REFUSE and refused.event is not None


# --- issue 11: workers before traffic --------------------------------------------------------


def test_a_raise_waits_for_available_workers_then_pauses_after_the_timeout():
    spec = RolloutSpec(
        workers=(WorkerTarget("w", 1, 10),), workers_ready_timeout=timedelta(minutes=5)
    )
    start = next_action(spec, RolloutState(), None, T0)
    assert start.kind == ActionKind.START and start.replicas == {"w": 1}
    # given no worker available yet: the start waits at 0%, saying for what
    held = hold_for_workers(spec, start, {"w": 0}, T0)
    assert held.kind == ActionKind.WAIT and held.percentage == 0
    assert held.state.phase == Phase.PENDING and held.state.workers_waiting_since == T0
    assert "for workers before 0% -> 10%: w 0/1 available" in held.message
    # when the timeout passes, the rollout pauses once, with a Warning naming the Deployment
    later = T0 + timedelta(minutes=5)
    again = next_action(spec, held.state, None, later)
    paused = hold_for_workers(spec, again, {"w": 0}, later)
    assert paused.kind == ActionKind.PAUSE and paused.state.phase == Phase.PAUSED
    assert paused.state.reason == Reason.WORKERS_NOT_READY and paused.percentage == 0
    assert paused.event and paused.event.reason == "WorkersNotReady"
    assert "w 0/1 available" in paused.event.message
    still = hold_for_workers(spec, next_action(spec, paused.state, None, later), {"w": 0}, later)
    assert still.kind == ActionKind.WAIT and still.event is None
    # then once the worker is available, the start goes through
    ready = hold_for_workers(spec, next_action(spec, still.state, None, later), {"w": 1}, later)
    assert ready.kind == ActionKind.START and ready.percentage == 10
    assert ready.state.phase == Phase.PROGRESSING and ready.state.workers_waiting_since is None


def test_an_advance_held_for_workers_keeps_the_step_and_its_healthy_run():
    spec = RolloutSpec(workers=(WorkerTarget("w", 1, 10),), step_duration=timedelta(minutes=1))
    state = replace(at_step(0), healthy_since=T0)
    due = next_action(
        spec, state, analysis(at=T0 + timedelta(minutes=2)), T0 + timedelta(minutes=2)
    )
    assert due.kind == ActionKind.ADVANCE and due.replicas == {"w": 5}
    held = hold_for_workers(spec, due, {"w": 2}, T0 + timedelta(minutes=2))
    assert held.percentage == 10 and held.state.step_index == 0
    assert held.state.healthy_since == T0 and held.replicas == {"w": 5}
    assert hold_for_workers(spec, due, {"w": 5}, T0).percentage == 50


def test_a_rollout_paused_for_workers_still_rolls_back_on_a_failure():
    paused = replace(at_step(1), phase=Phase.PAUSED, reason=Reason.WORKERS_NOT_READY)
    decision = next_action(SPEC, paused, analysis(Verdict.FAIL), T0)
    assert decision.kind == ActionKind.ROLLBACK and decision.state.reason is None


def test_a_wait_for_workers_ends_when_a_fresh_analysis_no_longer_asks_for_the_raise():
    waiting = replace(at_step(0), workers_waiting_since=T0)
    quiet = next_action(SPEC, waiting, None, T0 + timedelta(seconds=1))
    assert quiet.state.workers_waiting_since == T0  # no news: the raise is still pending
    unsure = next_action(SPEC, waiting, analysis(Verdict.INCONCLUSIVE), T0 + timedelta(seconds=2))
    assert unsure.kind == ActionKind.WAIT and unsure.state.workers_waiting_since is None

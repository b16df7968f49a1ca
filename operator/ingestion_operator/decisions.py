"""Every rollout decision, as pure functions of (spec, state, analysis, clock, command).

Nothing here talks to Kubernetes or Prometheus: the handlers gather inputs, call
`next_action`, and carry out the returned `Decision` (scale, route, write status,
post the event). Because each decision is derived from the stored status and the
clock alone, an operator restarted mid-step neither resets the step timer nor
advances twice.

What the decisions guarantee (issue 16): traffic leaves 0% only after a pre-flight in
which every rule returned data (`Preflight`, asked for with ActionKind.PREFLIGHT); a
step advances only after its minHealthyDuration of continuous passing analysis
(status.healthySince: a failed, errored or inconclusive analysis, and any pause, start
the clock again); a rollout paused on analysis errors resumes only on a passing
analysis, and says so. Raising traffic is further gated on the worker Deployments'
available replicas (readiness.hold_for_workers), applied by the handlers once they have
scaled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from ingestion_operator.analysis import AnalysisResult, Preflight, Verdict
from ingestion_operator.health import promotable, span, summary
from ingestion_operator.replicas import worker_replicas
from ingestion_operator.spec import OnError, Phase, Reason, RolloutSpec, RolloutState


class ActionKind(StrEnum):
    START = "Start"
    WAIT = "Wait"
    ADVANCE = "Advance"
    STEP_DOWN = "StepDown"
    COMPLETE = "Complete"
    ROLLBACK = "Rollback"
    PAUSE = "Pause"
    RESUME = "Resume"
    #: The next move is the first shift off 0%: run the pre-flight and ask again with it.
    PREFLIGHT = "Preflight"
    #: The pre-flight found a rule that cannot see: nothing moves (phase Failed).
    REFUSE = "Refuse"


class Command(StrEnum):
    """Manual overrides, given as annotations on the IngestionRollout."""

    PROMOTE = "promote"
    ABORT = "abort"
    RETRY = "retry"


@dataclass(frozen=True)
class Event:
    type: str  # "Normal" | "Warning"
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    kind: ActionKind
    state: RolloutState  # the status to store
    message: str
    event: Event | None = None
    #: Worker Deployment -> the replicas its share of traffic needs at the new percentage
    #: (applied before raising traffic, and after draining when lowering it).
    replicas: dict[str, int] = field(default_factory=dict)
    #: For a move that raises traffic (Start, Advance): the state to keep if the workers
    #: are not ready for it (readiness.hold_for_workers).
    held: RolloutState | None = None

    @property
    def percentage(self) -> int:
        """The routing percentage to apply (workers are scaled before raising it)."""
        return self.state.percentage


def step_index_for(plan: tuple[int, ...], percentage: int) -> int:
    """Index of the largest planned step at or below `percentage` (-1: none)."""
    index = -1
    for i, step in enumerate(plan):
        if step <= percentage:
            index = i
    return index


def next_action(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None = None,
    preflight: Preflight | None = None,
) -> Decision:
    """The one next move of a rollout, with the worker replicas its percentage needs.

    A start (the first shift off 0%) needs `preflight`: without one the answer is
    ActionKind.PREFLIGHT, and the caller asks again with the pre-flight's result.
    """
    decision = _next(spec, state, analysis, now, command, preflight)
    # A wait for workers lasts while the raise is asked for again (the workers gate then
    # keeps or ends it); a fresh analysis that no longer asks for it ends it.
    asks = decision.kind in (ActionKind.START, ActionKind.ADVANCE, ActionKind.PREFLIGHT)
    if not asks and (analysis is not None or decision.kind != ActionKind.WAIT):
        decision = replace(decision, state=replace(decision.state, workers_waiting_since=None))
    return replace(decision, replicas=worker_replicas(spec, decision.percentage))


def _next(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None,
    preflight: Preflight | None,
) -> Decision:
    if command == Command.ABORT and state.phase not in (Phase.ROLLED_BACK, Phase.FAILED):
        return _rollback(state, "Aborted", "aborted by annotation")
    if state.phase in (Phase.ROLLED_BACK, Phase.FAILED):
        return _stopped(spec, state, now, command, preflight)
    if state.percentage > spec.target_percentage:
        return _step_down(spec, state, now)
    if state.phase == Phase.PENDING or state.step_index < 0:
        return _start(spec, state, now, "Started", preflight)
    if spec.paused:
        if state.phase == Phase.PAUSED and state.reason == Reason.PAUSED_BY_SPEC:
            return Decision(ActionKind.WAIT, state, "paused by spec")
        paused = replace(
            state, phase=Phase.PAUSED, reason=Reason.PAUSED_BY_SPEC, healthy_since=None
        )
        return Decision(ActionKind.PAUSE, paused, f"paused by spec at {state.percentage}%")
    if state.phase == Phase.COMPLETED:
        if spec.plan and state.percentage < spec.plan[-1]:  # the target was raised afterwards
            return _resume(state, spec.plan, now, "target raised")
        return Decision(ActionKind.WAIT, state, f"completed at {state.percentage}%")
    state = _replanned(state, spec.plan)
    if state.phase == Phase.PAUSED:
        return _paused(spec, state, analysis, now, command)
    return _judge(spec, state, analysis, now, command)


def _stopped(
    spec: RolloutSpec,
    state: RolloutState,
    now: datetime,
    command: Command | None,
    preflight: Preflight | None,
) -> Decision:
    """RolledBack or Failed: only a retry (or a pre-flight that now passes) starts again."""
    if command == Command.RETRY:  # e.g. after the spec or a missing reference was fixed
        return _start(spec, RolloutState(), now, "Retry", preflight)
    if state.phase == Phase.FAILED and state.reason == Reason.PREFLIGHT_FAILED:
        return _start(spec, state, now, "Started", preflight)
    if state.phase == Phase.ROLLED_BACK:
        return Decision(ActionKind.WAIT, state, "rolled back; annotate retry to start again")
    return Decision(ActionKind.WAIT, state, "failed; fix the cause, then annotate retry")


def _paused(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None,
) -> Decision:
    """Paused, and spec.paused is false: carry on as the pause's cause allows."""
    if state.reason == Reason.WORKERS_NOT_READY:
        decision = _judge(
            spec, replace(state, phase=Phase.PROGRESSING, reason=None), analysis, now, command
        )
        if decision.kind == ActionKind.ADVANCE:  # the workers gate decides, from this state
            return replace(
                decision,
                held=replace(decision.held or state, phase=state.phase, reason=state.reason),
            )
        if decision.kind != ActionKind.WAIT:
            return decision
        kept = replace(decision.state, phase=Phase.PAUSED, reason=Reason.WORKERS_NOT_READY)
        return replace(
            decision, state=kept, message=f"paused, workers not ready; {decision.message}"
        )
    if state.reason == Reason.ANALYSIS_ERRORS or (
        state.reason is None and state.consecutive_errors > spec.analysis.consecutive_error_limit
    ):
        return _paused_on_errors(spec, state, analysis, now, command)
    resumed = replace(state, phase=Phase.PROGRESSING, reason=None, healthy_since=None)
    message = f"unpaused: resuming at {state.percentage}%"
    return Decision(ActionKind.RESUME, resumed, message, Event("Normal", "Unpaused", message))


def _paused_on_errors(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None,
) -> Decision:
    """Paused after too many analysis errors: resume only on a passing analysis."""
    if analysis is None:
        return Decision(ActionKind.WAIT, state, "paused on analysis errors")
    if analysis.verdict == Verdict.FAIL:
        return _on_failure(spec, state, analysis)
    if analysis.verdict == Verdict.ERROR and command != Command.PROMOTE:
        return _on_error(spec, state, analysis)
    passing = promotable(analysis, state.percentage)
    if not passing and command != Command.PROMOTE:
        message = (
            f"paused on analysis errors; the latest analysis is {analysis.verdict}, not Pass: "
            f"holding at {state.percentage}% ({summary(analysis)})"
        )
        return Decision(ActionKind.WAIT, replace(state, consecutive_errors=0), message)
    resumed = replace(
        state,
        phase=Phase.PROGRESSING,
        reason=None,
        consecutive_errors=0,
        healthy_since=analysis.at if passing else None,
    )
    if command == Command.PROMOTE:
        return _advance(spec, resumed, now, promoted=True)
    message = f"analysis {analysis.verdict} again: resumed at {state.percentage}%"
    return Decision(ActionKind.RESUME, resumed, message, Event("Normal", "Resumed", message))


def _judge(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None,
) -> Decision:
    """Progressing: weigh the latest analysis; advance after a full healthy run."""
    if analysis is None:
        if command == Command.PROMOTE:
            return _advance(spec, state, now, promoted=True)
        return Decision(ActionKind.WAIT, state, "waiting for the next analysis")
    if analysis.verdict == Verdict.FAIL:
        return _on_failure(spec, replace(state, healthy_since=None), analysis)
    if analysis.verdict == Verdict.ERROR and not command:
        return _on_error(spec, replace(state, healthy_since=None), analysis)
    passing = promotable(analysis, state.percentage)
    since = (state.healthy_since or analysis.at) if passing else None
    healthy = replace(state, consecutive_errors=0, healthy_since=since)
    if command == Command.PROMOTE:
        return _advance(spec, healthy, now, promoted=True)
    if since is None:
        message = (
            f"analysis {analysis.verdict}: holding at {state.percentage}% ({summary(analysis)})"
        )
        return Decision(ActionKind.WAIT, healthy, message)
    elapsed, needed = now - (state.step_started_at or now), spec.duration_of(state.percentage)
    streak, streak_needed = now - since, spec.min_healthy_of(state.percentage)
    if elapsed < needed or streak < streak_needed:
        message = (
            f"analysis Pass for {span(streak)} of the {span(streak_needed)} needed "
            f"(step held {span(elapsed)} of {span(needed)})"
        )
        return Decision(ActionKind.WAIT, healthy, message)
    return _advance(spec, healthy, now, promoted=False)


def _on_failure(spec: RolloutSpec, state: RolloutState, analysis: AnalysisResult) -> Decision:
    failures = state.failure_count + 1
    metric = analysis.failing_metric()
    detail = metric.message if metric else "analysis failed"
    if failures > spec.analysis.failure_limit:
        return _rollback(replace(state, failure_count=failures), "AnalysisFailed", detail)
    return Decision(
        ActionKind.WAIT,
        replace(state, failure_count=failures, healthy_since=None),
        f"failed analysis {failures} of {spec.analysis.failure_limit} tolerated: {detail}",
        Event("Warning", "AnalysisFailed", detail),
    )


def _on_error(spec: RolloutSpec, state: RolloutState, analysis: AnalysisResult) -> Decision:
    errors = state.consecutive_errors + 1
    counted = replace(state, consecutive_errors=errors, healthy_since=None)
    errored = [m.message for m in analysis.metrics if m.verdict == Verdict.ERROR]
    detail = "; ".join(errored) or "analysis error"
    if state.phase == Phase.PAUSED:
        return Decision(ActionKind.WAIT, counted, f"paused on analysis errors: {detail}")
    if errors <= spec.analysis.consecutive_error_limit:
        return Decision(ActionKind.WAIT, counted, f"analysis error {errors}: {detail}")
    if spec.analysis.on_error == OnError.ROLLBACK:
        return _rollback(counted, "AnalysisError", detail)
    message = f"{errors} analysis errors in a row, holding traffic at {state.percentage}%: {detail}"
    paused = replace(counted, phase=Phase.PAUSED, reason=Reason.ANALYSIS_ERRORS)
    return Decision(
        ActionKind.PAUSE, paused, message, Event("Warning", "AnalysisErrorPaused", message)
    )


def _start(
    spec: RolloutSpec,
    state: RolloutState,
    now: datetime,
    reason: str,
    preflight: Preflight | None,
) -> Decision:
    plan = spec.plan
    if not plan:
        done = replace(state, phase=Phase.COMPLETED, step_index=-1, percentage=0, reason=None)
        return Decision(ActionKind.COMPLETE, done, "target is 0%: nothing to roll out")
    if preflight is None:
        return Decision(ActionKind.PREFLIGHT, state, "pre-flight before the first shift")
    if not preflight.ok:
        refused = RolloutState(Phase.FAILED, reason=Reason.PREFLIGHT_FAILED)
        again = state.phase == Phase.FAILED and state.reason == Reason.PREFLIGHT_FAILED
        event = None if again else Event("Warning", "PreflightFailed", preflight.message)
        return Decision(ActionKind.REFUSE, refused, preflight.message, event)
    first = RolloutState(Phase.PROGRESSING, 0, plan[0], now)
    message = f"0% -> {plan[0]}%"
    # What to keep while the workers are not ready: a retried or re-checked rollout is
    # Pending again (not yet started), whatever it was.
    waiting = state.workers_waiting_since
    held = (
        state
        if state.phase in (Phase.PENDING, Phase.PAUSED)
        else RolloutState(workers_waiting_since=waiting)
    )
    return Decision(
        ActionKind.START,
        first,
        f"{message} ({preflight.message})",
        Event("Normal", reason, message),
        held=held,
    )


def _advance(spec: RolloutSpec, state: RolloutState, now: datetime, promoted: bool) -> Decision:
    plan = spec.plan
    if state.step_index + 1 >= len(plan):
        done = replace(state, phase=Phase.COMPLETED, healthy_since=None)
        message = f"rollout completed at {state.percentage}%"
        return Decision(
            ActionKind.COMPLETE, done, message, Event("Normal", "RolloutCompleted", message)
        )
    index = state.step_index + 1
    moved = replace(
        state,
        step_index=index,
        percentage=plan[index],
        step_started_at=now,
        failure_count=0,
        consecutive_errors=0,
        healthy_since=None,
    )
    message = f"{state.percentage}% -> {plan[index]}%" + (" (promoted)" if promoted else "")
    event = Event("Normal", "StepAdvanced", message)
    return Decision(ActionKind.ADVANCE, moved, message, event, held=state)


def _rollback(state: RolloutState, reason: str, detail: str) -> Decision:
    message = f"{detail}; routing {state.percentage}% -> 0%"
    back = replace(
        state, phase=Phase.ROLLED_BACK, percentage=0, step_index=-1, reason=None, healthy_since=None
    )
    return Decision(ActionKind.ROLLBACK, back, message, Event("Warning", "RolledBack", message))


def _step_down(spec: RolloutSpec, state: RolloutState, now: datetime) -> Decision:
    """The target was lowered below the live percentage: move traffic down at once."""
    target = spec.target_percentage
    plan = spec.plan
    lowered = replace(
        state,
        percentage=target,
        step_index=len(plan) - 1,
        step_started_at=now,
        healthy_since=None,
    )
    if state.phase not in (Phase.PAUSED, Phase.COMPLETED):
        lowered = replace(lowered, phase=Phase.PROGRESSING)
    message = f"target lowered: {state.percentage}% -> {target}%"
    return Decision(ActionKind.STEP_DOWN, lowered, message, Event("Normal", "StepDown", message))


def _resume(state: RolloutState, plan: tuple[int, ...], now: datetime, why: str) -> Decision:
    resumed = replace(
        state,
        phase=Phase.PROGRESSING,
        step_index=step_index_for(plan, state.percentage),
        step_started_at=now,
        healthy_since=None,
    )
    return Decision(ActionKind.RESUME, resumed, f"{why}: resuming at {state.percentage}%")


def _replanned(state: RolloutState, plan: tuple[int, ...]) -> RolloutState:
    """Keep the step index consistent with the live percentage if the plan changed."""
    index = step_index_for(plan, state.percentage)
    return state if index == state.step_index else replace(state, step_index=index)

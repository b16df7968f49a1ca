"""Every rollout decision, as pure functions of (spec, state, analysis, clock, command).

Nothing here talks to Kubernetes or Prometheus: the handlers gather inputs, call
`next_action`, and carry out the returned `Decision` (scale, route, write status,
post the event). Because each decision is derived from the stored status and the
clock alone, an operator restarted mid-step neither resets the step timer nor
advances twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from ingestion_operator.analysis import RULES_BY_NAME, AnalysisResult, Verdict
from ingestion_operator.spec import OnError, Phase, RolloutSpec, RolloutState


class ActionKind(StrEnum):
    START = "Start"
    WAIT = "Wait"
    ADVANCE = "Advance"
    STEP_DOWN = "StepDown"
    COMPLETE = "Complete"
    ROLLBACK = "Rollback"
    PAUSE = "Pause"
    RESUME = "Resume"


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

    @property
    def percentage(self) -> int:
        """The routing percentage to apply (workers are scaled before raising it)."""
        return self.state.percentage


def desired_replicas(percentage: int, min_replicas: int, max_replicas: int) -> int:
    """Workers for a traffic share: ceil(max * pct / 100), clamped to [min, max]."""
    wanted = math.ceil(max_replicas * percentage / 100)
    return max(min_replicas, min(max_replicas, wanted))


def step_index_for(plan: tuple[int, ...], percentage: int) -> int:
    """Index of the largest planned step at or below `percentage` (-1: none)."""
    index = -1
    for i, step in enumerate(plan):
        if step <= percentage:
            index = i
    return index


def worker_replicas(spec: RolloutSpec, percentage: int) -> dict[str, int]:
    """What every worker Deployment needs for `percentage` of the traffic."""
    return {
        worker.deployment_name: desired_replicas(
            percentage, worker.min_replicas, worker.max_replicas
        )
        for worker in spec.workers
    }


def _compares_paths(name: str) -> bool:
    rule = RULES_BY_NAME.get(name)
    return rule is not None and rule.compares_paths


def promotable(analysis: AnalysisResult | None, percentage: int) -> bool:
    """A passing analysis; at 100% a rule comparing Temporal with legacy (the latency
    ratio) has no legacy side left, so an Inconclusive one alone does not block the
    final step."""
    if analysis is None:
        return False
    if analysis.verdict == Verdict.PASS:
        return True
    if percentage < 100 or analysis.verdict != Verdict.INCONCLUSIVE:
        return False
    others = [m for m in analysis.metrics if not _compares_paths(m.name)]
    return all(m.verdict == Verdict.PASS for m in others)


def next_action(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None = None,
) -> Decision:
    """The one next move of a rollout, with the worker replicas its percentage needs."""
    decision = _next(spec, state, analysis, now, command)
    return replace(decision, replicas=worker_replicas(spec, decision.percentage))


def _next(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None,
) -> Decision:
    if command == Command.ABORT and state.phase not in (Phase.ROLLED_BACK, Phase.FAILED):
        return _rollback(state, "Aborted", "aborted by annotation")
    if state.phase == Phase.ROLLED_BACK:
        if command == Command.RETRY:
            return _start(spec, RolloutState(), now, "Retry")
        return Decision(ActionKind.WAIT, state, "rolled back; annotate retry to start again")
    if state.phase == Phase.FAILED:
        if command == Command.RETRY:  # e.g. after the spec or a missing reference was fixed
            return _start(spec, RolloutState(), now, "Retry")
        return Decision(ActionKind.WAIT, state, "failed; fix the cause, then annotate retry")
    plan = spec.plan
    if state.percentage > spec.target_percentage:
        return _step_down(spec, state, now)
    if state.phase == Phase.PENDING or state.step_index < 0:
        return _start(spec, state, now, "Started")
    if spec.paused:
        if state.phase == Phase.PAUSED:
            return Decision(ActionKind.WAIT, state, "paused by spec")
        return Decision(ActionKind.PAUSE, replace(state, phase=Phase.PAUSED), "paused by spec")
    if state.phase == Phase.COMPLETED:
        if plan and state.percentage < plan[-1]:  # the target was raised afterwards
            return _resume(state, plan, now, "target raised")
        return Decision(ActionKind.WAIT, state, f"completed at {state.percentage}%")
    return _judge(spec, _replanned(state, plan), analysis, now, command)


def _judge(
    spec: RolloutSpec,
    state: RolloutState,
    analysis: AnalysisResult | None,
    now: datetime,
    command: Command | None,
) -> Decision:
    """Progressing (or paused on errors): weigh the latest analysis."""
    if analysis is None:
        return Decision(ActionKind.WAIT, state, "waiting for the first analysis")
    if analysis.verdict == Verdict.FAIL:
        return _on_failure(spec, state, analysis)
    if analysis.verdict == Verdict.ERROR and not command:
        return _on_error(spec, state, analysis)
    healthy = replace(state, consecutive_errors=0)
    if state.phase == Phase.PAUSED:
        healthy = replace(healthy, phase=Phase.PROGRESSING)
        if analysis.verdict != Verdict.ERROR:
            return Decision(
                ActionKind.RESUME,
                healthy,
                "analysis healthy again: resumed",
                Event("Normal", "Resumed", "analysis healthy again"),
            )
    if command != Command.PROMOTE and not promotable(analysis, state.percentage):
        return Decision(ActionKind.WAIT, healthy, f"analysis {analysis.verdict}: holding")
    elapsed = now - (state.step_started_at or now)
    needed = spec.duration_of(state.percentage)
    if command != Command.PROMOTE and elapsed < needed:
        return Decision(ActionKind.WAIT, healthy, f"healthy for {elapsed}, step needs {needed}")
    return _advance(spec, healthy, now, promoted=command == Command.PROMOTE)


def _on_failure(spec: RolloutSpec, state: RolloutState, analysis: AnalysisResult) -> Decision:
    failures = state.failure_count + 1
    metric = analysis.failing_metric()
    detail = metric.message if metric else "analysis failed"
    if failures > spec.analysis.failure_limit:
        return _rollback(replace(state, failure_count=failures), "AnalysisFailed", detail)
    return Decision(
        ActionKind.WAIT,
        replace(state, failure_count=failures),
        f"failed analysis {failures} of {spec.analysis.failure_limit} tolerated: {detail}",
        Event("Warning", "AnalysisFailed", detail),
    )


def _on_error(spec: RolloutSpec, state: RolloutState, analysis: AnalysisResult) -> Decision:
    errors = state.consecutive_errors + 1
    counted = replace(state, consecutive_errors=errors)
    errored = [m.message for m in analysis.metrics if m.verdict == Verdict.ERROR]
    detail = "; ".join(errored) or "analysis error"
    if errors <= spec.analysis.consecutive_error_limit:
        return Decision(ActionKind.WAIT, counted, f"analysis error {errors}: {detail}")
    if spec.analysis.on_error == OnError.ROLLBACK:
        return _rollback(counted, "AnalysisError", detail)
    if state.phase == Phase.PAUSED:
        return Decision(ActionKind.WAIT, counted, f"paused on analysis errors: {detail}")
    message = f"{errors} analysis errors in a row, holding traffic at {state.percentage}%: {detail}"
    return Decision(
        ActionKind.PAUSE,
        replace(counted, phase=Phase.PAUSED),
        message,
        Event("Warning", "AnalysisErrorPaused", message),
    )


def _start(spec: RolloutSpec, state: RolloutState, now: datetime, reason: str) -> Decision:
    plan = spec.plan
    if not plan:
        done = replace(state, phase=Phase.COMPLETED, step_index=-1, percentage=0)
        return Decision(ActionKind.COMPLETE, done, "target is 0%: nothing to roll out")
    first = RolloutState(Phase.PROGRESSING, 0, plan[0], now, 0, 0)
    message = f"0% -> {plan[0]}%"
    return Decision(ActionKind.START, first, message, Event("Normal", reason, message))


def _advance(spec: RolloutSpec, state: RolloutState, now: datetime, promoted: bool) -> Decision:
    plan = spec.plan
    if state.step_index + 1 >= len(plan):
        done = replace(state, phase=Phase.COMPLETED)
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
    )
    message = f"{state.percentage}% -> {plan[index]}%" + (" (promoted)" if promoted else "")
    return Decision(ActionKind.ADVANCE, moved, message, Event("Normal", "StepAdvanced", message))


def _rollback(state: RolloutState, reason: str, detail: str) -> Decision:
    message = f"{detail}; routing {state.percentage}% -> 0%"
    back = replace(state, phase=Phase.ROLLED_BACK, percentage=0, step_index=-1)
    return Decision(ActionKind.ROLLBACK, back, message, Event("Warning", "RolledBack", message))


def _step_down(spec: RolloutSpec, state: RolloutState, now: datetime) -> Decision:
    """The target was lowered below the live percentage: move traffic down at once."""
    target = spec.target_percentage
    plan = spec.plan
    lowered = replace(state, percentage=target, step_index=len(plan) - 1, step_started_at=now)
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
    )
    return Decision(ActionKind.RESUME, resumed, f"{why}: resuming at {state.percentage}%")


def _replanned(state: RolloutState, plan: tuple[int, ...]) -> RolloutState:
    """Keep the step index consistent with the live percentage if the plan changed."""
    index = step_index_for(plan, state.percentage)
    return state if index == state.step_index else replace(state, step_index=index)

"""Workers before traffic: a move that raises the percentage waits for its workers.

Scaling a Deployment only asks for Pods; documents routed to Temporal before they run
queue up on the task queue (issue 11). So the handlers scale first, read each worker
Deployment's `status.availableReplicas`, and pass the counts here: the raise goes through
only when every Deployment has the replicas the new percentage needs available. Until
then the rollout waits at its current percentage (status.workersWaitingSince records
since when); past spec.workersReadyTimeout it pauses (phase Paused, reason
WorkersNotReady, one Warning Event saying which Deployment has how many) and carries on
by itself, from the same state, once they are available. Pure, like the decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from ingestion_operator.decisions import ActionKind, Decision, Event
from ingestion_operator.health import span
from ingestion_operator.spec import Phase, Reason, RolloutSpec


def shortfall(replicas: Mapping[str, int], available: Mapping[str, int]) -> str:
    """ "w 1/5 available, v 0/2 available" for the Deployments short of replicas ("": none)."""
    short = [
        f"{name} {available.get(name, 0)}/{wanted} available"
        for name, wanted in sorted(replicas.items())
        if available.get(name, 0) < wanted
    ]
    return ", ".join(short)


def hold_for_workers(
    spec: RolloutSpec, decision: Decision, available: Mapping[str, int], now: datetime
) -> Decision:
    """`decision` if it does not raise traffic or its workers are available; else wait on
    the held state, and pause once spec.workers_ready_timeout has passed."""
    held = decision.held
    short = shortfall(decision.replicas, available)
    if held is None or decision.percentage <= held.percentage or not short:
        return replace(decision, state=replace(decision.state, workers_waiting_since=None))
    since = held.workers_waiting_since or now
    waited, timeout = now - since, spec.workers_ready_timeout
    move = f"{held.percentage}% -> {decision.percentage}%"
    if waited < timeout:
        message = f"waiting {span(waited)} of {span(timeout)} for workers before {move}: {short}"
        waiting = replace(held, workers_waiting_since=since)
        return Decision(ActionKind.WAIT, waiting, message, replicas=decision.replicas)
    message = (
        f"workers not ready after {span(timeout)}: {short}; holding traffic at "
        f"{held.percentage}% instead of {move} until they are available"
    )
    paused = replace(
        held, phase=Phase.PAUSED, reason=Reason.WORKERS_NOT_READY, workers_waiting_since=since
    )
    if held.phase == Phase.PAUSED and held.reason == Reason.WORKERS_NOT_READY:
        return Decision(ActionKind.WAIT, paused, message, replicas=decision.replicas)
    event = Event("Warning", "WorkersNotReady", message)
    return Decision(ActionKind.PAUSE, paused, message, event, decision.replicas)

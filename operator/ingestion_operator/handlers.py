"""kopf handlers: thin glue between the cluster and the pure rollout decisions.

One timer per IngestionRollout gathers the inputs (spec, stored status, manual
annotation, a metrics analysis when spec.analysis.interval has elapsed, a pre-flight
before the first shift), asks `decisions.next_action` for the one next move, and carries
it out in a safe order: scale workers and wait until they are available before raising
traffic (readiness.hold_for_workers), lower traffic before draining workers, then status
(projected by status.py), then the Event. Nothing sleeps: the timer comes back on its own.

The handlers are registered by `registry(settings)` when the process starts
(`python -m ingestion_operator`), so the settings, the timer interval included, are
read at start-up and not when this module is imported.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import prometheus_client
from ingestion_contract.crd import (
    ABORT_ANNOTATION,
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    PROMOTE_ANNOTATION,
    RETRY_ANNOTATION,
    VERSION,
)

from ingestion_operator import kube, status
from ingestion_operator.analysis import AnalysisResult, Measurement, preflight
from ingestion_operator.crd_validation import apply_defaults, validate_rollout
from ingestion_operator.decisions import ActionKind, Command, Decision, next_action
from ingestion_operator.measuring import backlog, judge_analysis, measure
from ingestion_operator.outages import quiet_query_retries
from ingestion_operator.readiness import hold_for_workers
from ingestion_operator.settings import RolloutOperatorSettings
from ingestion_operator.spec import AnalysisSpec, Phase, Reason, RolloutSpec, RolloutState

# Abort wins over retry, retry over promote: the safest command is honoured first.
COMMANDS = (
    (Command.ABORT, ABORT_ANNOTATION),
    (Command.RETRY, RETRY_ANNOTATION),
    (Command.PROMOTE, PROMOTE_ANNOTATION),
)
MAX_EVENT_MESSAGE = 1024
LIVENESS: dict[str, str] = {}

PERCENTAGE = prometheus_client.Gauge(
    "ingestionrollout_percentage", "Routing percentage applied", ["namespace", "name"]
)
PHASE = prometheus_client.Gauge(
    "ingestionrollout_phase", "1 for the rollout's current phase", ["namespace", "name", "phase"]
)
ROLLBACKS = prometheus_client.Counter("ingestionrollout_rollbacks", "Rollbacks carried out")
#: What takes a rollout's measurements (its analysis spec, the age of its step).
type Measure = Callable[[AnalysisSpec, timedelta | None], Awaitable[dict[str, Measurement]]]


@dataclass(frozen=True)
class Tick:
    """What carrying out one decision needs to know about its rollout."""

    namespace: str
    name: str
    spec: RolloutSpec
    before: RolloutState
    now: datetime
    backlog: float | None  # the queueDepth measurement, for draining after a rollback


def registry(settings: RolloutOperatorSettings) -> kopf.OperatorRegistry:
    """Every handler of the operator, configured by `settings` (read once, at start-up)."""
    handlers = kopf.OperatorRegistry()

    @kopf.on.login(id="login", registry=handlers)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """kopf's credentials as the kubernetes client finds them (in-cluster, KUBECONFIG):
        what kopf's default registry logs in with, stated here for this registry."""
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(id="startup", registry=handlers)
    async def startup(logger: Any, **_: Any) -> None:
        """Credentials for our own client calls, quiet query retries, the /metrics endpoint."""
        await asyncio.to_thread(kube.configure)
        quiet_query_retries()
        if settings.metrics_port:
            prometheus_client.start_http_server(settings.metrics_port, addr=settings.bind_address)
            logger.info("metrics on :%s/metrics", settings.metrics_port)

    @kopf.on.probe(id="lastReconcileAt", registry=handlers)
    def last_reconcile(**_: Any) -> str | None:
        """Shown by the liveness endpoint: when a reconcile last finished (None: not yet)."""
        return LIVENESS.get("lastReconcileAt")

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        id="reconcile",
        interval=settings.timer_interval_seconds,
        registry=handlers,
    )
    async def on_timer(
        body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
    ) -> None:
        await reconcile(body, meta, status, patch, settings.history_limit)

    return handlers


async def reconcile(
    body: kopf.Body, meta: kopf.Meta, stored_status: kopf.Status, patch: kopf.Patch, limit: int
) -> None:
    """One step of one rollout: gather, decide, apply, record."""
    namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
    now = datetime.now(UTC)
    command = take_command(meta.get("annotations") or {}, patch)
    stored = dict(stored_status or {})
    generation = int(meta["generation"])  # the API server sets it on every write of the spec
    spec = parse(body)
    if isinstance(spec, str):
        mark_failed(body, stored, patch, spec, Reason.INVALID_SPEC, generation)
        return
    before = RolloutState.from_status(stored)
    if command is None and await cause_gone(spec, namespace, before):
        command = Command.RETRY  # level-based recovery: the fix itself is the signal
    decision, measurements, analysis = await decide(spec, before, stored, now, command)
    tick = Tick(namespace, name, spec, before, now, backlog(measurements))
    try:
        decision = await apply(tick, decision)
    except kube.MissingReference as exc:
        await route_to_legacy(tick, patch)
        mark_failed(body, stored, patch, str(exc), Reason.MISSING_REFERENCE, generation)
        return
    finally:
        LIVENESS["lastReconcileAt"] = now.isoformat()
    if command == Command.PROMOTE and decision.percentage <= before.percentage:
        keep_promotion(decision, patch)
    observed = status.Observed(before, stored, now, len(spec.plan), analysis, generation)
    for key, value in status.decided(observed, decision, limit).items():
        patch.status[key] = value
    record(body, namespace, decision)


async def decide(
    spec: RolloutSpec,
    before: RolloutState,
    stored: Mapping[str, Any],
    now: datetime,
    command: Command | None,
    measure_with: Measure | None = None,
) -> tuple[Decision, dict[str, Measurement] | None, AnalysisResult | None]:
    """The next move, with the measurements and the analysis it was decided on. A move off
    0% is decided twice: the decisions ask for the pre-flight, which runs every query.
    (`measure_with`: what measures instead of the provider; a replay passes its history.)"""
    take = measure_with or measure
    measurements: dict[str, Measurement] | None = None
    analysis = None
    if command is not None or analysis_due(spec, before, stored, now):
        age = now - before.step_started_at if before.step_started_at else None
        measurements = await take(spec.analysis, age)
        analysis = judge_analysis(spec.analysis, measurements, now)
    decision = next_action(spec, before, analysis, now, command)
    if decision.kind == ActionKind.PREFLIGHT:
        measurements = measurements or await take(spec.analysis, None)
        checked = preflight(measurements, spec.analysis.optional_rules)
        decision = next_action(spec, before, analysis, now, command, checked)
    return decision, measurements, analysis


async def cause_gone(spec: RolloutSpec, namespace: str, before: RolloutState) -> bool:
    """Failed for a cause that has since been fixed: the spec parses now (the caller got
    this far), or every referenced ConfigMap and Deployment exists again. (A failed
    pre-flight is re-run by the decisions themselves.)"""
    if before.phase != Phase.FAILED:
        return False
    if before.reason == Reason.INVALID_SPEC:
        return True
    if before.reason != Reason.MISSING_REFERENCE:
        return False
    try:
        await kube.require_configmap(namespace, spec.configmap_name)
        for worker in spec.workers:
            await kube.read_replicas(namespace, worker.deployment_name)
    except kube.MissingReference:
        return False
    return True


async def route_to_legacy(tick: Tick, patch: kopf.Patch) -> None:
    """A worker Deployment or the ConfigMap vanished: send every document to the legacy
    path if the ConfigMap is still there (no Temporal workers may be left to serve it)."""
    spec = tick.spec
    if tick.before.percentage == 0:
        return
    try:
        await kube.write_percentage(tick.namespace, spec.configmap_name, spec.configmap_key, 0)
    except kube.MissingReference:
        return
    patch.status["currentPercentage"] = 0
    patch.status["currentStepIndex"] = -1
    PERCENTAGE.labels(namespace=tick.namespace, name=tick.name).set(0)


def take_command(annotations: Mapping[str, str], patch: kopf.Patch) -> Command | None:
    """The manual command annotated on the rollout, removed so it acts exactly once."""
    for command, annotation in COMMANDS:
        if annotation in annotations:
            patch.metadata.annotations[annotation] = None
            return command
    return None


def keep_promotion(decision: Decision, patch: kopf.Patch) -> None:
    """A promotion held back because its workers are not available yet stays annotated, so
    the next tick asks again (a one-shot command must not be lost to a wait)."""
    if decision.state.workers_waiting_since is not None:
        annotations = patch.metadata.annotations
        if PROMOTE_ANNOTATION in annotations:
            del annotations[PROMOTE_ANNOTATION]


def parse(body: kopf.Body) -> RolloutSpec | str:
    """The typed spec, or why there is none (a str, shown as status.message).

    A real API server with the CRD's schema defaults and validates every spec, but an
    older CRD without the schema (or a server that does not enforce it) lets through
    `spec: null`, a non-object spec or values the schema refuses (issue 16, item 7). So
    the spec is checked here as admission would (crd_validation), as defence: the
    rollout becomes Failed/InvalidSpec instead of an exception in every handler call.
    Cached by the spec's content: validation (schema and CEL) is the costly part of a
    quiet tick, and a spec only changes with a new generation.
    """
    raw = body.get("spec", {})
    if not isinstance(raw, Mapping):
        kind = "null" if raw is None else type(raw).__name__
        return f"invalid spec: spec must be an object (for every default: spec: {{}}), not {kind}"
    return _parse(json.dumps(dict(raw), sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _parse(spec_json: str) -> RolloutSpec | str:
    obj = {"apiVersion": API_VERSION, "kind": KIND, "spec": json.loads(spec_json)}
    errors = validate_rollout(obj)
    if errors:
        return "invalid spec: " + "; ".join(errors)
    try:
        return RolloutSpec.from_spec(apply_defaults(obj)["spec"])
    except (ValueError, KeyError, TypeError) as exc:
        return f"invalid spec: {exc}"


def mark_failed(
    body: kopf.Body,
    stored: Mapping[str, Any],
    patch: kopf.Patch,
    message: str,
    reason: Reason,
    generation: int,
) -> None:
    """Phase Failed with the cause, once: no exception, so no kopf retry loop."""
    if stored.get("phase") == Phase.FAILED and stored.get("message") == message:
        return
    for key, value in status.failed(message, reason.value, generation).items():
        patch.status[key] = value
    meta = body["metadata"]
    set_phase_metric(str(meta.get("namespace")), str(meta.get("name")), Phase.FAILED)
    kopf.warn(body, reason=reason.value, message=message[:MAX_EVENT_MESSAGE])


def analysis_due(
    spec: RolloutSpec, state: RolloutState, stored: Mapping[str, Any], now: datetime
) -> bool:
    """Analyse only in phases that use it, and at most once per spec.analysis.interval;
    at every tick while a raise of traffic waits for its workers (to move on at once)."""
    if state.phase not in (Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLED_BACK):
        return False
    if state.workers_waiting_since is not None:
        return True
    last = (stored.get("lastAnalysis") or {}).get("at")
    if not last:
        return True
    return now - datetime.fromisoformat(last) >= spec.analysis.interval


async def apply(tick: Tick, decision: Decision) -> Decision:
    """Carry out the decision on the cluster: capacity before traffic, traffic before drain.
    Returns what was carried out: a raise whose workers are not available yet is held."""
    spec, before = tick.spec, tick.before.percentage
    if decision.percentage > before:
        available = await scale_up(tick, decision.replicas)
        decision = hold_for_workers(spec, decision, available, tick.now)
    new = decision.percentage
    if new != before or decision.kind == ActionKind.ROLLBACK:
        await kube.write_percentage(tick.namespace, spec.configmap_name, spec.configmap_key, new)
    if new < before or decision.state.phase == Phase.ROLLED_BACK:
        await drain(tick, decision)
    return decision


async def scale_up(tick: Tick, replicas: Mapping[str, int]) -> dict[str, int]:
    """Ask each worker Deployment for at least what it needs; its available replicas."""
    available = {}
    for deployment, wanted in replicas.items():
        current = await kube.read_replicas(tick.namespace, deployment)
        if current.wanted < wanted:
            await kube.scale(tick.namespace, deployment, wanted)
        available[deployment] = current.available
    return available


async def drain(tick: Tick, decision: Decision) -> None:
    """Shrink workers to what the new percentage needs, but only once the backlog is empty:
    queued documents must still be processed. Not empty yet: the next tick retries."""
    if tick.backlog is None or tick.backlog > 0:
        return
    for deployment, wanted in decision.replicas.items():
        if (await kube.read_replicas(tick.namespace, deployment)).wanted > wanted:
            await kube.scale(tick.namespace, deployment, wanted)


def record(body: kopf.Body, namespace: str, decision: Decision) -> None:
    """The Event (after the status, so a reader of the Event sees the new status) and metrics."""
    name = str(body["metadata"]["name"])
    PERCENTAGE.labels(namespace=namespace, name=name).set(decision.percentage)
    set_phase_metric(namespace, name, decision.state.phase)
    if decision.kind == ActionKind.ROLLBACK:
        ROLLBACKS.inc()
    if decision.event is not None:
        event = decision.event
        kopf.event(
            body, type=event.type, reason=event.reason, message=event.message[:MAX_EVENT_MESSAGE]
        )


def set_phase_metric(namespace: str, name: str, current: Phase) -> None:
    """ingestionrollout_phase: 1 for the current phase, 0 for every other."""
    for phase in Phase:
        PHASE.labels(namespace=namespace, name=name, phase=phase.value).set(
            1 if phase == current else 0
        )

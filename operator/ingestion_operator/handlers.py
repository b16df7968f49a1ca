"""kopf handlers: thin glue between the cluster and the pure rollout decisions.

One timer per IngestionRollout gathers the inputs (spec, stored status, manual
annotation, a metrics analysis when spec.analysis.interval has elapsed), asks
`decisions.next_action` for the one next move, and carries it out in a safe order:
scale workers before raising traffic, lower traffic before draining workers, then
status (projected by status.py), then the Event. Nothing sleeps: the timer comes back
on its own.

The handlers are registered by `registry(settings)` when the process starts
(`python -m ingestion_operator`), so the settings, the timer interval included, are
read at start-up and not when this module is imported.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
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
from ingestion_operator.analysis import (
    QUERY_NAMES,
    QUEUE_DEPTH,
    AnalysisResult,
    Measurement,
    assess,
)
from ingestion_operator.crd_validation import apply_defaults, validate_rollout
from ingestion_operator.decisions import ActionKind, Command, Decision, next_action
from ingestion_operator.metricproviders import MetricProvider, make_provider
from ingestion_operator.settings import RolloutOperatorSettings
from ingestion_operator.spec import AnalysisSpec, Phase, RolloutSpec, RolloutState

# Abort wins over retry, retry over promote: the safest command is honoured first.
COMMANDS = (
    (Command.ABORT, ABORT_ANNOTATION),
    (Command.RETRY, RETRY_ANNOTATION),
    (Command.PROMOTE, PROMOTE_ANNOTATION),
)
# Causes of phase Failed that the operator clears by itself once they are gone.
INVALID_SPEC, MISSING_REFERENCE = "InvalidSpec", "MissingReference"
MAX_EVENT_MESSAGE = 1024
LIVENESS: dict[str, str] = {}

PERCENTAGE = prometheus_client.Gauge(
    "ingestionrollout_percentage", "Routing percentage applied", ["namespace", "name"]
)
PHASE = prometheus_client.Gauge(
    "ingestionrollout_phase", "1 for the rollout's current phase", ["namespace", "name", "phase"]
)
ANALYSES = prometheus_client.Counter(
    "ingestionrollout_analysis", "Analyses run, by verdict", ["verdict"]
)
ROLLBACKS = prometheus_client.Counter("ingestionrollout_rollbacks", "Rollbacks carried out")


@dataclass(frozen=True)
class Tick:
    """What carrying out one decision needs to know about its rollout."""

    namespace: str
    name: str
    spec: RolloutSpec
    before: RolloutState
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
        """Credentials for our own client calls, and the /metrics endpoint."""
        await asyncio.to_thread(kube.configure)
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
    generation = int(meta["generation"]) if meta.get("generation") is not None else None
    spec = parse(body)
    if isinstance(spec, str):
        mark_failed(body, stored, patch, spec, INVALID_SPEC, generation)
        return
    before = RolloutState.from_status(stored)
    if command is None and await cause_gone(spec, namespace, stored):
        command = Command.RETRY  # level-based recovery: the fix itself is the signal
    analysis, backlog = None, None
    if command is not None or analysis_due(spec, before, stored, now):
        analysis, backlog = await analyse(spec.analysis, now)
    tick = Tick(namespace, name, spec, before, backlog)
    decision = next_action(spec, before, analysis, now, command)
    try:
        await apply(tick, decision)
    except kube.MissingReference as exc:
        await route_to_legacy(tick, patch)
        mark_failed(body, stored, patch, str(exc), MISSING_REFERENCE, generation)
        return
    finally:
        LIVENESS["lastReconcileAt"] = now.isoformat()
    observed = status.Observed(before, stored, now, len(spec.plan), analysis, generation)
    for key, value in status.decided(observed, decision, limit).items():
        patch.status[key] = value
    record(body, namespace, decision)


async def cause_gone(spec: RolloutSpec, namespace: str, stored: dict[str, Any]) -> bool:
    """Failed for a cause that has since been fixed: the spec parses now (the caller got
    this far), or every referenced ConfigMap and Deployment exists again."""
    if stored.get("phase") != Phase.FAILED:
        return False
    if stored.get("reason") == INVALID_SPEC:
        return True
    if stored.get("reason") != MISSING_REFERENCE:
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


def take_command(annotations: dict[str, str], patch: kopf.Patch) -> Command | None:
    """The manual command annotated on the rollout, removed so it acts exactly once."""
    for command, annotation in COMMANDS:
        if annotation in annotations:
            patch.metadata.annotations[annotation] = None
            return command
    return None


def parse(body: kopf.Body) -> RolloutSpec | str:
    """Admission as the API server would do it (the emulator does not): errors as a str.
    Cached by the spec's content: validation (schema and CEL) is the costly part of a
    quiet tick, and a spec only changes with a new generation."""
    return _parse(json.dumps(dict(body["spec"]), sort_keys=True))


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
    stored: dict[str, Any],
    patch: kopf.Patch,
    message: str,
    reason: str,
    generation: int | None,
) -> None:
    """Phase Failed with the cause, once: no exception, so no kopf retry loop."""
    if stored.get("phase") == Phase.FAILED and stored.get("message") == message:
        return
    for key, value in status.failed(message, reason, generation).items():
        patch.status[key] = value
    meta = body["metadata"]
    set_phase_metric(str(meta.get("namespace")), str(meta.get("name")), Phase.FAILED)
    kopf.warn(body, reason=reason, message=message[:MAX_EVENT_MESSAGE])


def analysis_due(
    spec: RolloutSpec, state: RolloutState, stored: dict[str, Any], now: datetime
) -> bool:
    """Analyse only in phases that use it, and at most once per spec.analysis.interval."""
    if state.phase not in (Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLED_BACK):
        return False
    last = (stored.get("lastAnalysis") or {}).get("at")
    if not last:
        return True
    return now - datetime.fromisoformat(last) >= spec.analysis.interval


async def analyse(spec: AnalysisSpec, now: datetime) -> tuple[AnalysisResult, float | None]:
    """Measure with the spec's provider (in a thread: providers are synchronous), judge."""
    provider = provider_for(spec.provider, spec.prometheus_url)
    measurements = await asyncio.to_thread(measure, provider, spec)
    result = assess(measurements, spec.thresholds, spec.min_sample_count, now)
    ANALYSES.labels(verdict=result.verdict.value).inc()
    queue = measurements.get(QUEUE_DEPTH)
    backlog = queue.value if queue is not None and queue.error is None else None
    return result, backlog


def measure(provider: MetricProvider, spec: AnalysisSpec) -> dict[str, Measurement]:
    """Every rule's measurement; queries the provider cannot build are errors, as data."""
    try:
        queries = provider.queries(spec)
    except ValueError as exc:
        return {name: Measurement(error=f"no query: {exc}") for name in QUERY_NAMES}
    return provider.measure(queries)


@functools.cache
def provider_for(kind: str, url: str) -> MetricProvider:
    """One provider (one HTTP session) per backend, shared by the rollouts using it."""
    return make_provider(kind, url=url)


async def apply(tick: Tick, decision: Decision) -> None:
    """Carry out the decision on the cluster: capacity before traffic, traffic before drain."""
    spec, new = tick.spec, decision.percentage
    if new > tick.before.percentage:
        for deployment, wanted in decision.replicas.items():
            if await kube.read_replicas(tick.namespace, deployment) < wanted:
                await kube.scale(tick.namespace, deployment, wanted)
    if new != tick.before.percentage or decision.kind == ActionKind.ROLLBACK:
        await kube.write_percentage(tick.namespace, spec.configmap_name, spec.configmap_key, new)
    if new < tick.before.percentage or decision.state.phase == Phase.ROLLED_BACK:
        await drain(tick, decision)


async def drain(tick: Tick, decision: Decision) -> None:
    """Shrink workers to what the new percentage needs, but only once the backlog is empty:
    queued documents must still be processed. Not empty yet: the next tick retries."""
    if tick.backlog is None or tick.backlog > 0:
        return
    for deployment, wanted in decision.replicas.items():
        if await kube.read_replicas(tick.namespace, deployment) > wanted:
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

"""kopf handlers: thin glue between the cluster and the pure rollout decisions.

One timer per IngestionRollout gathers the inputs (spec, stored status, manual
annotation, a Prometheus analysis when spec.analysis.interval has elapsed), asks
`decisions.next_action` for the one next move, and carries it out in a safe order:
scale workers before raising traffic, lower traffic before draining workers, then
status, then the Event. Nothing sleeps: the timer comes back on its own.

Run: `kopf run --standalone -m ingestion_operator.handlers` or `python -m ingestion_operator`.
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

from ingestion_operator import kube
from ingestion_operator.analysis import (
    QUEUE_DEPTH,
    AnalysisResult,
    Thresholds,
    assess,
    default_queries,
    resolve_queries,
)
from ingestion_operator.crd_validation import apply_defaults, validate_rollout
from ingestion_operator.decisions import (
    ActionKind,
    Command,
    Decision,
    desired_replicas,
    next_action,
)
from ingestion_operator.metricproviders import MetricProvider, make_provider
from ingestion_operator.settings import get_settings
from ingestion_operator.spec import Phase, RolloutSpec, RolloutState

GROUP, VERSION, PLURAL = "ingestion.apexmemory.io", "v1alpha1", "ingestionrollouts"
ANNOTATION_PREFIX = f"{GROUP}/"
# Abort wins over retry, retry over promote: the safest command is honoured first.
COMMAND_ORDER = (Command.ABORT, Command.RETRY, Command.PROMOTE)
CONDITIONS = {
    "Progressing": (Phase.PROGRESSING,),
    "Completed": (Phase.COMPLETED,),
    "RolledBack": (Phase.ROLLED_BACK,),
}
SETTINGS = get_settings()
# Causes of phase Failed that the operator clears by itself once they are gone.
INVALID_SPEC, MISSING_REFERENCE = "InvalidSpec", "MissingReference"
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
class Parsed:
    """A validated, defaulted spec with what the analysis needs from it."""

    spec: RolloutSpec
    thresholds: Thresholds
    queries: dict[str, str]


@dataclass(frozen=True)
class Tick:
    """Everything one timer run knows; passed around instead of long argument lists."""

    namespace: str
    name: str
    now: datetime
    parsed: Parsed
    before: RolloutState
    analysis: AnalysisResult | None
    backlog: float | None  # the queueDepth measurement, for draining after a rollback


@kopf.on.startup()
async def startup(logger: Any, **_: Any) -> None:
    """Credentials for our own client calls, and the /metrics endpoint."""
    await asyncio.to_thread(kube.configure)
    if SETTINGS.metrics_port:
        prometheus_client.start_http_server(SETTINGS.metrics_port, addr=SETTINGS.bind_address)
        logger.info("metrics on :%s/metrics", SETTINGS.metrics_port)


@kopf.on.probe(id="lastReconcileAt")
def last_reconcile(**_: Any) -> str | None:
    """Shown by the liveness endpoint: when a reconcile last finished (None: not yet)."""
    return LIVENESS.get("lastReconcileAt")


@kopf.timer(GROUP, VERSION, PLURAL, interval=SETTINGS.timer_interval_seconds)
async def reconcile(
    body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any
) -> None:
    """One step of one rollout: gather, decide, apply."""
    namespace, now = str(meta.get("namespace") or "default"), datetime.now(UTC)
    command = take_command(meta.get("annotations") or {}, patch)
    stored = dict(status or {})
    parsed = parse(body)
    if isinstance(parsed, str):
        mark_failed(body, stored, meta, patch, parsed, INVALID_SPEC)
        return
    before = RolloutState.from_status(stored)
    if command is None and await cause_gone(parsed.spec, namespace, stored):
        command = Command.RETRY  # level-based recovery: the fix itself is the signal
    analysis, backlog = None, None
    if command is not None or analysis_due(parsed.spec, before, stored, now):
        analysis, backlog = await analyse(parsed, now)
    tick = Tick(namespace, str(meta.get("name")), now, parsed, before, analysis, backlog)
    decision = next_action(parsed.spec, before, analysis, now, command)
    try:
        await apply(tick, decision)
    except kube.MissingReference as exc:
        await route_to_legacy(tick, patch)
        mark_failed(body, stored, meta, patch, str(exc), MISSING_REFERENCE)
        return
    finally:
        LIVENESS["lastReconcileAt"] = now.isoformat()
    write_status(tick, decision, stored, meta, patch)
    record(body, tick, decision)


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
        await kube.read_percentage(namespace, spec.configmap_name, spec.configmap_key)
        for worker in spec.workers:
            await kube.read_replicas(namespace, worker.deployment_name)
    except kube.MissingReference:
        return False
    return True


async def route_to_legacy(tick: Tick, patch: kopf.Patch) -> None:
    """A worker Deployment or the ConfigMap vanished: send every document to the legacy
    path if the ConfigMap is still there (no Temporal workers may be left to serve it)."""
    spec = tick.parsed.spec
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
    for command in COMMAND_ORDER:
        key = ANNOTATION_PREFIX + command.value
        if key in annotations:
            patch.metadata.annotations[key] = None
            return command
    return None


def parse(body: kopf.Body) -> Parsed | str:
    """Admission as the API server would do it (the emulator does not): errors as a str.
    Cached by the spec's content: validation (schema and CEL) is the costly part of a
    quiet tick, and a spec only changes with a new generation."""
    return _parse(json.dumps(dict(body["spec"]), sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _parse(spec_json: str) -> Parsed | str:
    obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "IngestionRollout"}
    obj["spec"] = json.loads(spec_json)
    errors = validate_rollout(obj)
    if errors:
        return "invalid spec: " + "; ".join(errors)
    raw = apply_defaults(obj)["spec"]
    try:
        spec = RolloutSpec.from_spec(raw)
        thresholds = Thresholds.from_spec(spec.analysis.thresholds)
        defaults = default_queries(spec.analysis.window, thresholds.latency_quantile)
        queries = resolve_queries(defaults, spec.analysis.queries)
    except (ValueError, KeyError, TypeError) as exc:
        return f"invalid spec: {exc}"
    return Parsed(spec, thresholds, queries)


def mark_failed(
    body: kopf.Body,
    stored: dict[str, Any],
    meta: kopf.Meta,
    patch: kopf.Patch,
    message: str,
    reason: str,
) -> None:
    """Phase Failed with the cause, once: no exception, so no kopf retry loop."""
    if stored.get("phase") == Phase.FAILED and stored.get("message") == message:
        return
    patch.status["phase"] = Phase.FAILED.value
    patch.status["message"] = message
    patch.status["reason"] = reason
    if meta.get("generation") is not None:
        patch.status["observedGeneration"] = int(meta["generation"])
    set_phase_metric(str(meta.get("namespace")), str(meta.get("name")), Phase.FAILED)
    kopf.warn(body, reason=reason, message=message[:1024])


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


async def analyse(parsed: Parsed, now: datetime) -> tuple[AnalysisResult, float | None]:
    """Query Prometheus (in a thread: the provider is synchronous) and judge."""
    provider = provider_for(parsed.spec.analysis.prometheus_url)
    measurements = await asyncio.to_thread(provider.measure, parsed.queries)
    result = assess(measurements, parsed.thresholds, parsed.spec.analysis.min_sample_count, now)
    ANALYSES.labels(verdict=result.verdict.value).inc()
    queue = measurements.get(QUEUE_DEPTH)
    backlog = queue.value if queue is not None and queue.error is None else None
    return result, backlog


@functools.cache
def provider_for(url: str) -> MetricProvider:
    """One provider (one HTTP session) per Prometheus, shared by the rollouts using it."""
    return make_provider("prometheus", url=url)


async def apply(tick: Tick, decision: Decision) -> None:
    """Carry out the decision on the cluster: capacity before traffic, traffic before drain."""
    spec, new = tick.parsed.spec, decision.percentage
    if new > tick.before.percentage:
        for worker in spec.workers:
            wanted = desired_replicas(new, worker.min_replicas, worker.max_replicas)
            if await kube.read_replicas(tick.namespace, worker.deployment_name) < wanted:
                await kube.scale(tick.namespace, worker.deployment_name, wanted)
    if new != tick.before.percentage or decision.kind == ActionKind.ROLLBACK:
        await kube.write_percentage(tick.namespace, spec.configmap_name, spec.configmap_key, new)
    if new < tick.before.percentage or decision.state.phase == Phase.ROLLED_BACK:
        await drain(tick, new)


async def drain(tick: Tick, percentage: int) -> None:
    """Shrink workers to what `percentage` needs, but only once the backlog is empty:
    queued documents must still be processed. Not empty yet: the next tick retries."""
    if tick.backlog is None or tick.backlog > 0:
        return
    for worker in tick.parsed.spec.workers:
        wanted = desired_replicas(percentage, worker.min_replicas, worker.max_replicas)
        if await kube.read_replicas(tick.namespace, worker.deployment_name) > wanted:
            await kube.scale(tick.namespace, worker.deployment_name, wanted)


def write_status(
    tick: Tick, decision: Decision, stored: dict[str, Any], meta: kopf.Meta, patch: kopf.Patch
) -> None:
    """Patch only the status fields that changed (a quiet tick writes nothing)."""
    wanted = status_fields(tick, decision, stored)
    if meta.get("generation") is not None:
        wanted["observedGeneration"] = int(meta["generation"])
    wanted["conditions"] = conditions(decision, stored, tick.now)
    for key, value in wanted.items():
        if stored.get(key) != value:
            patch.status[key] = value


def status_fields(tick: Tick, decision: Decision, stored: dict[str, Any]) -> dict[str, Any]:
    """The status a decision stands for, in the CRD's field names."""
    state, plan = decision.state, tick.parsed.spec.plan
    fields: dict[str, Any] = {
        "phase": state.phase.value,
        "currentStepIndex": state.step_index,
        "currentPercentage": state.percentage,
        "stepsTotal": len(plan),
        "stepLabel": f"{state.step_index + 1}/{len(plan)}",
        "failureCount": state.failure_count,
        "consecutiveErrors": state.consecutive_errors,
        "history": history(tick, decision, stored),
    }
    if state.step_started_at is not None:
        fields["stepStartedAt"] = state.step_started_at.isoformat()
    if tick.analysis is not None:
        fields["lastAnalysis"] = tick.analysis.to_status()
    if state.phase != Phase.FAILED and stored.get("reason"):
        fields["reason"] = None  # the failure's cause is gone
    # A quiet tick after a rollback or completion keeps the message that says why.
    live = state.phase in (Phase.PROGRESSING, Phase.PAUSED)
    if decision.kind != ActionKind.WAIT or (tick.analysis is not None and live):
        fields["message"] = decision.message
    return fields


def history(tick: Tick, decision: Decision, stored: dict[str, Any]) -> list[dict[str, Any]]:
    """Append a change of percentage or phase; keep the latest HISTORY_LIMIT entries."""
    entries = list(stored.get("history") or [])
    before, after = tick.before, decision.state
    if (before.percentage, before.phase) == (after.percentage, after.phase):
        return entries
    entry = {
        "at": tick.now.isoformat(),
        "fromPercentage": before.percentage,
        "toPercentage": after.percentage,
        "phase": after.phase.value,
        "reason": decision.event.reason if decision.event else decision.kind.value,
        "message": decision.message[:4096],
    }
    limit = max(1, min(SETTINGS.history_limit, 50))
    return [*entries, entry][-limit:]


def conditions(decision: Decision, stored: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
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
                "message": decision.message[:32768] if changed else old.get("message", ""),
                "lastTransitionTime": now.isoformat() if changed else old["lastTransitionTime"],
            }
        )
    return result


def record(body: kopf.Body, tick: Tick, decision: Decision) -> None:
    """The Event (after the status, so a reader of the Event sees the new status) and metrics."""
    name = str(body["metadata"]["name"])
    PERCENTAGE.labels(namespace=tick.namespace, name=name).set(decision.percentage)
    set_phase_metric(tick.namespace, name, decision.state.phase)
    if decision.kind == ActionKind.ROLLBACK:
        ROLLBACKS.inc()
    if decision.event is not None:
        event = decision.event
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1024])


def set_phase_metric(namespace: str, name: str, current: Phase) -> None:
    """ingestionrollout_phase: 1 for the current phase, 0 for every other."""
    for phase in Phase:
        PHASE.labels(namespace=namespace, name=name, phase=phase.value).set(
            1 if phase == current else 0
        )

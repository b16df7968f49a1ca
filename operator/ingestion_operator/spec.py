"""Typed views of an IngestionRollout: its spec (what the user asked for) and its status
(where the rollout is). The kopf handlers parse once and hand these to the pure
decision functions, which never see raw dictionaries.

Every default is the CRD's (ingestion_contract.crd_defaults is generated from
crds/ingestionrollouts.yaml), so a default is changed in the CRD and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ingestion_contract.crd import DEFAULT_ROUTING_CONFIGMAP, DEFAULT_ROUTING_KEY
from ingestion_contract.crd_defaults import SPEC, WORKER

from ingestion_operator.analysis.rules import QUERY_NAMES, RULES_BY_NAME, Thresholds

_ANALYSIS = SPEC["analysis"]
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class OnError(StrEnum):
    PAUSE = "Pause"
    ROLLBACK = "Rollback"


class Judge(StrEnum):
    """spec.analysis.judge: how the sampled rules (error rate, latency ratio) are judged."""

    THRESHOLD = "threshold"
    SEQUENTIAL = "sequential"


class Reason(StrEnum):
    """status.reason: why a rollout is Failed or Paused (the operator clears each by itself
    once its cause is gone)."""

    INVALID_SPEC = "InvalidSpec"
    MISSING_REFERENCE = "MissingReference"
    PREFLIGHT_FAILED = "PreflightFailed"
    PAUSED_BY_SPEC = "PausedBySpec"
    ANALYSIS_ERRORS = "AnalysisErrors"
    WORKERS_NOT_READY = "WorkersNotReady"


def parse_duration(text: str) -> timedelta:
    """'30s', '10m', '1h30m' -> timedelta; anything else is a ValueError."""
    match = _DURATION.match(text.strip()) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}: use forms like 30s, 10m, 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


# The CRD's defaults that need parsing, parsed once.
_INTERVAL = parse_duration(_ANALYSIS["interval"])
_ON_ERROR = OnError(_ANALYSIS["onError"])
_STEP_DURATION = parse_duration(SPEC["stepDuration"])
_WORKERS_READY_TIMEOUT = parse_duration(SPEC["workersReadyTimeout"])
_JUDGE = Judge(_ANALYSIS["judge"])


def optional_duration(text: Any) -> timedelta | None:
    return None if text is None else parse_duration(str(text))


@dataclass(frozen=True)
class WorkerTarget:
    deployment_name: str
    min_replicas: int = WORKER["minReplicas"]
    max_replicas: int = WORKER["maxReplicas"]

    @classmethod
    def from_spec(cls, worker: Mapping[str, Any]) -> WorkerTarget:
        given = {**WORKER, **worker}
        return cls(
            str(given["deploymentName"]), int(given["minReplicas"]), int(given["maxReplicas"])
        )


def query_overrides(queries: Mapping[str, Any] | None) -> dict[str, str]:
    """The CR's `analysis.queries`: each names a rule (or sampleCount) and is not blank.

    A typo must not leave the built-in query silently in place, so it is a ValueError."""
    queries = dict(queries or {})
    unknown = sorted(set(queries) - set(QUERY_NAMES))
    if unknown:
        raise ValueError(f"unknown query overrides {unknown}; known: {', '.join(QUERY_NAMES)}")
    empty = sorted(name for name, query in queries.items() if not str(query).strip())
    if empty:
        raise ValueError(f"empty query overrides {empty}")
    return {name: str(query) for name, query in queries.items()}


def optional_rules(names: Any) -> frozenset[str]:
    """spec.analysis.optionalRules: rule names (a typo must not silently make nothing optional)."""
    given = frozenset(str(name) for name in names or ())
    unknown = sorted(given - set(RULES_BY_NAME))
    if unknown:
        raise ValueError(f"unknown optionalRules {unknown}; known: {', '.join(RULES_BY_NAME)}")
    return given


@dataclass(frozen=True)
class AnalysisSpec:
    provider: str = _ANALYSIS["provider"]
    prometheus_url: str = _ANALYSIS["prometheusUrl"]
    interval: timedelta = _INTERVAL
    window: str = _ANALYSIS["window"]
    counter_window: str = _ANALYSIS["counterWindow"]
    #: Matchers added to every built-in query's series (spec.analysis.metricLabels).
    metric_labels: dict[str, str] = field(default_factory=dict)
    optional_rules: frozenset[str] = frozenset()
    judge: Judge = _JUDGE
    alpha: float = _ANALYSIS["alpha"]
    min_sample_count: int = _ANALYSIS["minSampleCount"]
    failure_limit: int = _ANALYSIS["failureLimit"]
    consecutive_error_limit: int = _ANALYSIS["consecutiveErrorLimit"]
    on_error: OnError = _ON_ERROR
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: Per-rule query overrides; the provider supplies the others (see metricproviders).
    queries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, analysis: Mapping[str, Any] | None) -> AnalysisSpec:
        given = {**_ANALYSIS, **(analysis or {})}
        return cls(
            provider=str(given["provider"]),
            prometheus_url=str(given["prometheusUrl"]),
            interval=parse_duration(given["interval"]),
            window=str(given["window"]),
            counter_window=str(given["counterWindow"]),
            metric_labels={str(k): str(v) for k, v in (given.get("metricLabels") or {}).items()},
            optional_rules=optional_rules(given.get("optionalRules")),
            judge=Judge(given["judge"]),
            alpha=float(given["alpha"]),
            min_sample_count=int(given["minSampleCount"]),
            failure_limit=int(given["failureLimit"]),
            consecutive_error_limit=int(given["consecutiveErrorLimit"]),
            on_error=OnError(given["onError"]),
            thresholds=Thresholds.from_spec(given.get("thresholds")),
            queries=query_overrides(given.get("queries")),
        )


@dataclass(frozen=True)
class StepOverride:
    """One spec.stepOverrides entry: what it sets (None: the spec-wide value applies)."""

    duration: timedelta | None = None
    min_healthy: timedelta | None = None

    @classmethod
    def from_spec(cls, entry: Mapping[str, Any]) -> StepOverride:
        return cls(
            optional_duration(entry.get("duration")),
            optional_duration(entry.get("minHealthyDuration")),
        )


@dataclass(frozen=True)
class RolloutSpec:
    target_percentage: int = SPEC["targetPercentage"]
    steps: tuple[int, ...] = tuple(SPEC["steps"])
    step_duration: timedelta = _STEP_DURATION
    #: Continuous passing analysis a step needs (None: each step's duration).
    min_healthy_duration: timedelta | None = None
    step_overrides: dict[int, StepOverride] = field(default_factory=dict)  # by percentage
    workers_ready_timeout: timedelta = _WORKERS_READY_TIMEOUT
    paused: bool = SPEC["paused"]
    configmap_name: str = DEFAULT_ROUTING_CONFIGMAP
    configmap_key: str = DEFAULT_ROUTING_KEY
    workers: tuple[WorkerTarget, ...] = tuple(WorkerTarget.from_spec(w) for w in SPEC["workers"])
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)

    @property
    def plan(self) -> tuple[int, ...]:
        """The percentages actually walked: steps below the target, then the target."""
        below = tuple(s for s in self.steps if s < self.target_percentage)
        return (*below, self.target_percentage) if self.target_percentage > 0 else ()

    def duration_of(self, percentage: int) -> timedelta:
        """How long the step at `percentage` is held."""
        override = self.step_overrides.get(percentage)
        return override.duration if override and override.duration else self.step_duration

    def min_healthy_of(self, percentage: int) -> timedelta:
        """Continuous passing analysis the step at `percentage` needs before it advances:
        its override, else spec.minHealthyDuration, else the step's own duration."""
        override = self.step_overrides.get(percentage)
        if override and override.min_healthy:
            return override.min_healthy
        return self.min_healthy_duration or self.duration_of(percentage)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> RolloutSpec:
        """Parse a validated spec, thresholds and query overrides included.

        The spec is expected as the API server stores it (defaults applied); a key still
        missing takes the CRD's default. A bad value raises ValueError.
        """
        given = {**SPEC, **spec}
        routing = {**SPEC["routing"], **(given["routing"] or {})}
        return cls(
            target_percentage=int(given["targetPercentage"]),
            steps=tuple(int(s) for s in given["steps"]),
            step_duration=parse_duration(given["stepDuration"]),
            min_healthy_duration=optional_duration(given.get("minHealthyDuration")),
            step_overrides={
                int(o["step"]): StepOverride.from_spec(o) for o in given.get("stepOverrides") or []
            },
            workers_ready_timeout=parse_duration(given["workersReadyTimeout"]),
            paused=bool(given["paused"]),
            configmap_name=str(routing["configMapName"]),
            configmap_key=str(routing["key"]),
            workers=tuple(WorkerTarget.from_spec(w) for w in given["workers"]),
            analysis=AnalysisSpec.from_spec(given["analysis"]),
        )


@dataclass(frozen=True)
class RolloutState:
    """The part of status every decision is derived from (restart-safe: no memory)."""

    phase: Phase = Phase.PENDING
    step_index: int = -1  # index into spec.plan; -1 before the first step
    percentage: int = 0
    step_started_at: datetime | None = None
    failure_count: int = 0
    consecutive_errors: int = 0
    #: Why it is Failed or Paused (None otherwise).
    reason: Reason | None = None
    #: Start of the current run of passing analyses in this step (None: no run).
    healthy_since: datetime | None = None
    #: When the wait for worker replicas before a raise of traffic began (None: no wait).
    workers_waiting_since: datetime | None = None

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> RolloutState:
        reason = status.get("reason")
        return cls(
            phase=Phase(status.get("phase", Phase.PENDING)),
            step_index=int(status.get("currentStepIndex", -1)),
            percentage=int(status.get("currentPercentage", 0)),
            step_started_at=_time(status.get("stepStartedAt")),
            failure_count=int(status.get("failureCount", 0)),
            consecutive_errors=int(status.get("consecutiveErrors", 0)),
            reason=Reason(reason) if reason in set(Reason) else None,
            healthy_since=_time(status.get("healthySince")),
            workers_waiting_since=_time(status.get("workersWaitingSince")),
        )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None

"""Typed views of an IngestionRollout: its spec (what the user asked for) and its status
(where the rollout is). The kopf handlers parse once and hand these to the pure
decision functions, which never see raw dictionaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

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


def parse_duration(text: str) -> timedelta:
    """'30s', '10m', '1h30m' -> timedelta; anything else is a ValueError."""
    match = _DURATION.match(text.strip()) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}: use forms like 30s, 10m, 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class WorkerTarget:
    deployment_name: str
    min_replicas: int = 1
    max_replicas: int = 10


@dataclass(frozen=True)
class AnalysisSpec:
    prometheus_url: str = "http://prometheus-server:9090"
    interval: timedelta = timedelta(seconds=30)
    window: str = "2m"
    min_sample_count: int = 50
    failure_limit: int = 0
    consecutive_error_limit: int = 4
    on_error: OnError = OnError.PAUSE
    thresholds: dict[str, float] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RolloutSpec:
    target_percentage: int = 100
    steps: tuple[int, ...] = (10, 50, 100)
    step_duration: timedelta = timedelta(minutes=10)
    step_overrides: dict[int, timedelta] = field(default_factory=dict)  # percentage -> duration
    paused: bool = False
    configmap_name: str = "ingestion-routing"
    configmap_key: str = "temporalPercentage"
    workers: tuple[WorkerTarget, ...] = (WorkerTarget("ingestion-temporal-worker"),)
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)

    @property
    def plan(self) -> tuple[int, ...]:
        """The percentages actually walked: steps below the target, then the target."""
        below = tuple(s for s in self.steps if s < self.target_percentage)
        return (*below, self.target_percentage) if self.target_percentage > 0 else ()

    def duration_of(self, percentage: int) -> timedelta:
        return self.step_overrides.get(percentage, self.step_duration)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> RolloutSpec:
        """Parse a (defaulted, validated) spec; a bad value raises ValueError."""
        routing = spec.get("routing") or {}
        analysis = spec.get("analysis") or {}
        return cls(
            target_percentage=int(spec.get("targetPercentage", 100)),
            steps=tuple(int(s) for s in spec.get("steps", (10, 50, 100))),
            step_duration=parse_duration(spec.get("stepDuration", "10m")),
            step_overrides={
                int(o["step"]): parse_duration(o["duration"])
                for o in spec.get("stepOverrides") or []
            },
            paused=bool(spec.get("paused", False)),
            configmap_name=routing.get("configMapName", "ingestion-routing"),
            configmap_key=routing.get("key", "temporalPercentage"),
            workers=tuple(
                WorkerTarget(w["deploymentName"], w.get("minReplicas", 1), w.get("maxReplicas", 10))
                for w in spec.get("workers", [{"deploymentName": "ingestion-temporal-worker"}])
            ),
            analysis=AnalysisSpec(
                prometheus_url=analysis.get("prometheusUrl", "http://prometheus-server:9090"),
                interval=parse_duration(analysis.get("interval", "30s")),
                window=str(analysis.get("window", "2m")),
                min_sample_count=int(analysis.get("minSampleCount", 50)),
                failure_limit=int(analysis.get("failureLimit", 0)),
                consecutive_error_limit=int(analysis.get("consecutiveErrorLimit", 4)),
                on_error=OnError(analysis.get("onError", "Pause")),
                thresholds=dict(analysis.get("thresholds") or {}),
                queries=dict(analysis.get("queries") or {}),
            ),
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

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> RolloutState:
        started = status.get("stepStartedAt")
        return cls(
            phase=Phase(status.get("phase", Phase.PENDING)),
            step_index=int(status.get("currentStepIndex", -1)),
            percentage=int(status.get("currentPercentage", 0)),
            step_started_at=datetime.fromisoformat(started) if started else None,
            failure_count=int(status.get("failureCount", 0)),
            consecutive_errors=int(status.get("consecutiveErrors", 0)),
        )

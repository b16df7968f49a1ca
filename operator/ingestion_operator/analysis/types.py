"""The vocabulary of rollout analysis, shared by the metric providers, `assess` and the
decision functions.

Kept apart from any provider or rule so that the pieces meet only through plain
frozen values: a provider answers with `Measurement`s (raw numbers, or the reason
there is none), `assess` turns them into `MetricResult`s and one `AnalysisResult`,
and the handlers store that result in the CR status. A failed query is data here
(`Measurement.error`), never an exception, so one unreachable Prometheus turns into
an Error verdict the operator can count instead of a crashed handler.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

ERROR_RATE = "errorRate"
LATENCY_RATIO = "latencyRatio"
QUEUE_DEPTH = "queueDepth"
DB_CONNECTION_ERRORS = "dbConnectionErrorsPerMinute"
SAMPLE_COUNT = "sampleCount"  # not a rule: the Temporal-path documents behind the rates

RULE_NAMES = (ERROR_RATE, LATENCY_RATIO, QUEUE_DEPTH, DB_CONNECTION_ERRORS)
QUERY_NAMES = (SAMPLE_COUNT, *RULE_NAMES)
MAX_STATUS_MESSAGE = 1024  # the CRD caps a message at 4096; a quoted error can be long


class Verdict(enum.StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


@dataclass(frozen=True)
class Measurement:
    """A provider's raw answer to one query.

    value None: the query ran and returned no data. error set: the query failed (the
    message says why). samples: the observations behind the value when the provider
    knows them; otherwise `assess` uses the `sampleCount` measurement.
    """

    value: float | None = None
    samples: float | None = None
    error: str | None = None


_SPEC_KEYS = {
    "maxErrorRate": "max_error_rate",
    "maxLatencyRatio": "max_latency_ratio",
    "latencyQuantile": "latency_quantile",
    "maxQueueDepth": "max_queue_depth",
    "maxDbConnectionErrorsPerMinute": "max_db_connection_errors_per_minute",
}


@dataclass(frozen=True)
class Thresholds:
    """Limits of a healthy Temporal path; every rule fails only strictly above its limit."""

    max_error_rate: float = 0.05
    max_latency_ratio: float = 2.0
    latency_quantile: float = 0.99
    max_queue_depth: float = 1000
    max_db_connection_errors_per_minute: float = 10.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"threshold {field.name} must be a finite number >= 0: {value}")
        if not 0 < self.latency_quantile <= 1:
            raise ValueError(f"latencyQuantile must be in (0, 1]: {self.latency_quantile}")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> Thresholds:
        """The CR's camelCase `analysis.thresholds`; missing keys keep their defaults.

        An unknown key is a ValueError: a misspelt limit must not silently fall back.
        """
        spec = spec or {}
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:
            known = ", ".join(_SPEC_KEYS)
            raise ValueError(f"unknown thresholds {unknown}; known: {known}")
        try:
            values = {_SPEC_KEYS[key]: float(value) for key, value in spec.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"thresholds must be numbers: {dict(spec)}") from exc
        return cls(**values)


def _json_number(value: float | None) -> float | None:
    """NaN and infinities are not JSON (the API server rejects them): store null."""
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float | None
    threshold: float
    verdict: Verdict
    message: str

    def to_status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _json_number(self.value),
            "threshold": self.threshold,
            "verdict": self.verdict.value,
            "message": self.message[:MAX_STATUS_MESSAGE],
        }


@dataclass(frozen=True)
class AnalysisResult:
    at: datetime
    verdict: Verdict
    metrics: tuple[MetricResult, ...]
    sample_count: float | None

    def to_status(self) -> dict[str, Any]:
        """The CR status form: {at (ISO 8601), verdict, metrics: [...]}, JSON-safe.

        `at` should be timezone-aware: the CRD's date-time (RFC 3339) needs an offset.
        """
        return {
            "at": self.at.isoformat(),
            "verdict": self.verdict.value,
            "metrics": [metric.to_status() for metric in self.metrics],
        }

    def failing_metric(self) -> MetricResult | None:
        """The first metric that failed, for the rollback reason; None if none failed."""
        return next((m for m in self.metrics if m.verdict == Verdict.FAIL), None)

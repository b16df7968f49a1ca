"""The vocabulary of rollout analysis, shared by the metric providers, `assess` and the
decision functions (the rules themselves and their thresholds are in rules.py).

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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
    knows them; otherwise `assess` uses the `sampleCount` measurement. buckets: a
    histogram's cumulative counts as (upper bound, count) pairs in bound order, for the
    queries that return one series per bucket (the sequential judge's evidence).
    """

    value: float | None = None
    samples: float | None = None
    error: str | None = None
    buckets: tuple[tuple[float, float], ...] | None = None


def _json_numbers(**values: float | None) -> dict[str, float]:
    """The finite values only. NaN and infinities are not JSON (the API server rejects them),
    and a null is not stored either: the status is written with a JSON merge patch, where
    null means "remove", so a real API server drops the key (kopf then warns that the
    patched object differs from the patch, at every analysis without data)."""
    return {k: v for k, v in values.items() if v is not None and math.isfinite(v)}


@dataclass(frozen=True)
class Evidence:
    """What stands behind a sequential verdict: the estimate's confidence bounds and the
    Temporal-path documents counted since the step began."""

    lower: float
    upper: float
    documents: int


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float | None
    threshold: float
    verdict: Verdict
    message: str
    #: False for an optional rule without data: shown, but not part of the overall verdict.
    counted: bool = True
    evidence: Evidence | None = None

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            **_json_numbers(value=self.value),
            "threshold": self.threshold,
            "verdict": self.verdict.value,
            "message": self.message[:MAX_STATUS_MESSAGE],
        }
        if not self.counted:
            status["counted"] = False
        if self.evidence is not None:
            status |= _json_numbers(lower=self.evidence.lower, upper=self.evidence.upper)
            status["documents"] = self.evidence.documents
        return status


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

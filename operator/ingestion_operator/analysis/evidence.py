"""The evidence since the current step began, as whole counts: what the sequential judge
weighs (analysis/sequential.py), read from the same metric contract as the windowed rules.

A metric provider measures four queries over a range equal to the step's age, so the
evidence accumulates through the step and starts from nothing at the next one:

- temporalDocuments, temporalFailures: Temporal-path documents finished, and failed;
- temporalLatencyBuckets, legacyLatencyBuckets: each path's latency histogram, as
  cumulative counts per bucket bound (`le`), one series per bound.

Prometheus's increase() extrapolates to the range's ends, so its answers are fractional
(41.7 documents): each count is rounded to a whole number, bucket counts are made
non-decreasing again after rounding, and failures never exceed documents. A count that
is absent (no series: nothing finished yet, or not scraped yet) is 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ingestion_operator.analysis.types import Measurement

TEMPORAL_DOCUMENTS = "temporalDocuments"
TEMPORAL_FAILURES = "temporalFailures"
TEMPORAL_BUCKETS = "temporalLatencyBuckets"
LEGACY_BUCKETS = "legacyLatencyBuckets"
EVIDENCE_NAMES = (TEMPORAL_DOCUMENTS, TEMPORAL_FAILURES, TEMPORAL_BUCKETS, LEGACY_BUCKETS)
#: Queries answered with one series per bucket bound (label `le`), not one number.
HISTOGRAMS = frozenset({TEMPORAL_BUCKETS, LEGACY_BUCKETS})


@dataclass(frozen=True)
class StepEvidence:
    """Whole counts since the step began: Temporal documents and failures, and both paths'
    cumulative latency counts over the same bucket bounds `le` (ending with +Inf)."""

    documents: int
    failures: int
    le: tuple[float, ...]
    temporal: tuple[int, ...]
    legacy: tuple[int, ...]


class EvidenceError(Exception):
    """An evidence query failed; the message says which and why."""


def count(measurement: Measurement | None, name: str) -> int:
    """A whole count from an increase() answer (absent or NaN: nothing counted)."""
    if measurement is None:
        raise EvidenceError(f"{name}: not measured")
    if measurement.error is not None:
        raise EvidenceError(f"{name} query failed: {measurement.error}")
    value = measurement.value
    return 0 if value is None or not math.isfinite(value) else max(0, round(value))


def cumulative(measurement: Measurement | None, name: str, le: Sequence[float]) -> tuple[int, ...]:
    """Whole, non-decreasing counts at each bound of `le` (a bound the series lacks holds
    the count of the bound below it)."""
    if measurement is None:
        raise EvidenceError(f"{name}: not measured")
    if measurement.error is not None:
        raise EvidenceError(f"{name} query failed: {measurement.error}")
    given = dict(measurement.buckets or ())
    counts, previous = [], 0
    for bound in le:
        value = given.get(bound)
        rounded = round(value) if value is not None and math.isfinite(value) else previous
        previous = max(previous, rounded)
        counts.append(previous)
    return tuple(counts)


def bounds(*measurements: Measurement | None) -> tuple[float, ...]:
    """Every bucket bound either histogram has, in order, ending with +Inf."""
    found = {b for m in measurements if m is not None for b, _ in (m.buckets or ()) if b > 0}
    return (*sorted(found - {math.inf}), math.inf)


def step_evidence(measurements: Mapping[str, Measurement]) -> StepEvidence:
    """The whole counts behind the sequential judge; EvidenceError if a query failed."""
    documents = count(measurements.get(TEMPORAL_DOCUMENTS), TEMPORAL_DOCUMENTS)
    failures = min(documents, count(measurements.get(TEMPORAL_FAILURES), TEMPORAL_FAILURES))
    slow, base = measurements.get(TEMPORAL_BUCKETS), measurements.get(LEGACY_BUCKETS)
    le = bounds(slow, base)
    return StepEvidence(
        documents,
        failures,
        le,
        cumulative(slow, TEMPORAL_BUCKETS, le),
        cumulative(base, LEGACY_BUCKETS, le),
    )

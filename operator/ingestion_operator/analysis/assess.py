"""Judging measurements against thresholds: the one place a number becomes a verdict.

Pure (no I/O, the clock passed in) so every boundary is unit-tested and a decision
can be replayed from stored measurements. The rules are honest about what they do
not know: no data, a NaN (0/0: nothing on one side of a ratio), or too few
Temporal-path documents for a rate to mean anything give Inconclusive, never a
silent Pass; a failed query gives Error with its message. Where absence of a series
legitimately means zero (a counter that never incremented), the *query* says so
(e.g. `or vector(0)` in metricproviders/prometheus_queries.py), not this module.

Overall verdict: any Fail -> Fail, else any Error -> Error, else any Inconclusive ->
Inconclusive, else Pass. Fail wins over Error because a measured breach is
actionable (roll back) even while another query is down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from ingestion_operator.analysis.rules import RULES, SAMPLE_COUNT, Rule, Thresholds
from ingestion_operator.analysis.types import AnalysisResult, Measurement, MetricResult, Verdict

_PRECEDENCE = (Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE)


def assess(
    measurements: Mapping[str, Measurement],
    thresholds: Thresholds,
    min_sample_count: int,
    at: datetime,
) -> AnalysisResult:
    """Judge every rule on `measurements` (keyed by rule name, plus `sampleCount`)."""
    sample_count = measurements.get(SAMPLE_COUNT)
    metrics = tuple(
        judge(rule, measurements.get(rule.name), sample_count, thresholds, min_sample_count)
        for rule in RULES
    )
    samples = sample_count.value if sample_count is not None else None
    finite = samples if samples is not None and math.isfinite(samples) else None
    return AnalysisResult(at, overall(m.verdict for m in metrics), metrics, finite)


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """Fail > Error > Inconclusive > Pass; no verdicts at all is Inconclusive."""
    seen = set(verdicts)
    if not seen:
        return Verdict.INCONCLUSIVE
    return next((v for v in _PRECEDENCE if v in seen), Verdict.PASS)


def fmt(value: float) -> str:
    """Short, exact-enough numbers for messages: 0.082, 3.005, 1500, 12."""
    return f"{value:.6g}"


def judge(
    rule: Rule,
    measurement: Measurement | None,
    sample_count: Measurement | None,
    thresholds: Thresholds,
    min_sample_count: int,
) -> MetricResult:
    """One rule's verdict: Error, then the sample gate, then no data/NaN, then the limit."""
    limit = thresholds.limit(rule)
    name = rule.name

    def result(verdict: Verdict, message: str) -> MetricResult:
        value = measurement.value if measurement is not None else None
        return MetricResult(name, value, limit, verdict, message)

    if measurement is None:
        return result(Verdict.ERROR, f"{name}: no measurement (query was not run)")
    if measurement.error is not None:
        return result(Verdict.ERROR, f"{name}: query failed: {measurement.error}")
    if rule.needs_samples and min_sample_count > 0:
        gate = sample_gate(name, measurement, sample_count, min_sample_count)
        if gate is not None:
            return result(*gate)
    value = measurement.value
    if value is None:
        return result(Verdict.INCONCLUSIVE, f"{name}: no data")
    if math.isnan(value):
        return result(Verdict.INCONCLUSIVE, f"{name}: NaN (0/0: no traffic in the window?)")
    if value > limit:
        return result(Verdict.FAIL, f"{name} {fmt(value)} > {fmt(limit)}")
    return result(Verdict.PASS, f"{name} {fmt(value)} <= {fmt(limit)}")


def sample_gate(
    name: str,
    measurement: Measurement,
    sample_count: Measurement | None,
    min_sample_count: int,
) -> tuple[Verdict, str] | None:
    """None when enough documents stand behind the value; else why not."""
    samples = measurement.samples
    if samples is None:
        if sample_count is None:
            return Verdict.ERROR, f"{name}: no {SAMPLE_COUNT} measurement to gate on"
        if sample_count.error is not None:
            return Verdict.ERROR, f"{name}: {SAMPLE_COUNT} query failed: {sample_count.error}"
        samples = sample_count.value
    if samples is None or math.isnan(samples):
        samples = 0.0  # no series: no Temporal-path document finished in the window
    if samples >= min_sample_count:
        return None
    seen = f" (value {fmt(measurement.value)})" if measurement.value is not None else ""
    return Verdict.INCONCLUSIVE, f"{name}: {fmt(samples)} of {min_sample_count} samples{seen}"

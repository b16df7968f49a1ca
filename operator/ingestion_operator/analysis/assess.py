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
actionable (roll back) even while another query is down. A rule the user marked
optional (spec.analysis.optionalRules) that has no data is reported but not counted:
without data it neither holds nor fails the rollout; with data it is judged as usual.

A rule with a floor (the latency ratio and minLatencyDeltaSeconds) fails only when its
value is above its limit AND its floor measurement (how many seconds slower Temporal
is at the quantile) is above the floor: a 3x ratio of 40 ms against 120 ms is not a
slowdown a user feels (issue 12). Messages print values with analysis.numbers, so the
comparison they state is visible ("10.0000001 > 10", never "10 > 10").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from ingestion_operator.analysis.numbers import against, exact
from ingestion_operator.analysis.rules import (
    LATENCY_QUANTILE,
    RULES,
    SAMPLE_COUNT,
    Rule,
    Thresholds,
)
from ingestion_operator.analysis.types import AnalysisResult, Measurement, MetricResult, Verdict

_PRECEDENCE = (Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE)


def assess(
    measurements: Mapping[str, Measurement],
    thresholds: Thresholds,
    min_sample_count: int,
    at: datetime,
    optional: frozenset[str] = frozenset(),
) -> AnalysisResult:
    """Judge every rule on `measurements` (keyed by query name: the rules, `sampleCount`
    and the floors' measurements); `optional` rules without data are not counted."""
    metrics = tuple(
        not_counted_if_absent(
            judge(rule, measurements, thresholds, min_sample_count),
            rule.name in optional and has_no_data(measurements.get(rule.name)),
        )
        for rule in RULES
    )
    return result_of(metrics, measurements, at)


def result_of(
    metrics: tuple[MetricResult, ...], measurements: Mapping[str, Measurement], at: datetime
) -> AnalysisResult:
    """The overall verdict of the counted metrics, with the sample count behind them."""
    sample_count = measurements.get(SAMPLE_COUNT)
    samples = sample_count.value if sample_count is not None else None
    finite = samples if samples is not None and math.isfinite(samples) else None
    verdict = overall(m.verdict for m in metrics if m.counted)
    return AnalysisResult(at, verdict, metrics, finite)


def has_no_data(measurement: Measurement | None) -> bool:
    """The query ran and matched no series (an error is not "no data")."""
    return measurement is not None and measurement.error is None and measurement.value is None


def not_counted_if_absent(metric: MetricResult, absent: bool) -> MetricResult:
    if not absent:
        return metric
    message = f"{metric.name}: no data (optional: not counted)"
    return MetricResult(metric.name, None, metric.threshold, metric.verdict, message, False)


def overall(verdicts: Iterable[Verdict]) -> Verdict:
    """Fail > Error > Inconclusive > Pass; no verdicts at all is Inconclusive."""
    seen = set(verdicts)
    if not seen:
        return Verdict.INCONCLUSIVE
    return next((v for v in _PRECEDENCE if v in seen), Verdict.PASS)


def judge(
    rule: Rule,
    measurements: Mapping[str, Measurement],
    thresholds: Thresholds,
    min_sample_count: int,
) -> MetricResult:
    """One rule's verdict: Error, then the sample gate, then no data/NaN, then the limit
    (and the floor, for a rule that has one)."""
    limit = thresholds.limit(rule)
    name = rule.name
    measurement = measurements.get(name)

    def result(verdict: Verdict, message: str) -> MetricResult:
        value = measurement.value if measurement is not None else None
        return MetricResult(name, value, limit, verdict, message)

    if measurement is None:
        return result(Verdict.ERROR, f"{name}: no measurement (query was not run)")
    if measurement.error is not None:
        return result(Verdict.ERROR, f"{name}: query failed: {measurement.error}")
    if rule.needs_samples and min_sample_count > 0:
        gate = sample_gate(name, measurement, measurements.get(SAMPLE_COUNT), min_sample_count)
        if gate is not None:
            return result(*gate)
    value = measurement.value
    if value is None:
        return result(Verdict.INCONCLUSIVE, f"{name}: no data")
    if math.isnan(value):
        return result(Verdict.INCONCLUSIVE, f"{name}: NaN (0/0: no traffic in the window?)")
    stated = f"{name} {against(value, limit)}"
    if value <= limit:
        return result(Verdict.PASS, f"{stated} <= {exact(limit)}")
    if rule.floor is None or thresholds[rule.floor[0]] <= 0:
        return result(Verdict.FAIL, f"{stated} > {exact(limit)}")
    return result(*beyond_floor(rule, measurements, thresholds, f"{stated} > {exact(limit)}"))


def beyond_floor(
    rule: Rule, measurements: Mapping[str, Measurement], thresholds: Thresholds, stated: str
) -> tuple[Verdict, str]:
    """A value above its limit: Fail only if the floor measurement is above the floor too."""
    assert rule.floor is not None
    key, measured_by = rule.floor
    floor = thresholds[key]
    amount = measurements.get(measured_by)
    quantile = thresholds[LATENCY_QUANTILE] if LATENCY_QUANTILE in rule.parameters else None
    what = f"p{quantile * 100:g} " if quantile is not None else ""
    if amount is None or amount.error is not None:
        why = amount.error if amount is not None else "query was not run"
        return Verdict.ERROR, f"{stated}, but {measured_by} failed: {why}"
    if amount.value is None or math.isnan(amount.value):
        return Verdict.INCONCLUSIVE, f"{stated}, but {measured_by} has no data ({key} {floor:g})"
    delta = f"{what}+{against(amount.value, floor)}s"
    if amount.value <= floor:
        return Verdict.PASS, f"{stated} but only {delta} <= {exact(floor)}s ({key})"
    return Verdict.FAIL, f"{stated} and {delta} > {exact(floor)}s ({key})"


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
    value = measurement.value
    seen = f" (value {exact(value)})" if value is not None else ""
    return Verdict.INCONCLUSIVE, f"{name}: {exact(samples)} of {min_sample_count} samples{seen}"

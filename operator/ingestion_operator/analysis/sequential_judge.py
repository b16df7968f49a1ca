"""The sequential judge (spec.analysis.judge: sequential): the rules that sample a
population, judged on the evidence since the step began with anytime-valid bounds.

The error rate and the latency ratio judge samples of the Temporal path's documents, so
they take the counts since the current step began (analysis/evidence.py) and the
confidence sequences of analysis/sequential.py at level 1 - spec.analysis.alpha: a rule
Fails only when its bound proves the limit broken, Passes only when its bound proves it
kept, and is Inconclusive in between (and Inconclusive never promotes). However often the
operator looks, a wrong verdict has probability <= alpha; the minSampleCount gate is not
needed, the bound carries it. The latency floor (minLatencyDeltaSeconds) applies here too.

The backlog and the DB connection errors keep their limits over their windows, as the
threshold judge has them: they are levels and rates of events, not samples of a
population with a true rate to estimate, so there is no bound to compute; a backlog of
1500 breaks a limit of 1000 whatever the sample size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from ingestion_operator.analysis.assess import has_no_data, judge, not_counted_if_absent, result_of
from ingestion_operator.analysis.evidence import (
    EVIDENCE_NAMES,
    EvidenceError,
    StepEvidence,
    step_evidence,
)
from ingestion_operator.analysis.rules import (
    ERROR_RATE,
    LATENCY_QUANTILE,
    LATENCY_RATIO,
    MIN_LATENCY_DELTA,
    RULES,
    Thresholds,
)
from ingestion_operator.analysis.sequential import judge_error_rate, judge_latency
from ingestion_operator.analysis.types import (
    AnalysisResult,
    Evidence,
    Measurement,
    MetricResult,
    Verdict,
)

#: The rules this judge decides from the evidence since the step began.
SEQUENTIAL_RULES = frozenset({ERROR_RATE, LATENCY_RATIO})


def assess_sequential(
    measurements: Mapping[str, Measurement],
    thresholds: Thresholds,
    alpha: float,
    at: datetime,
    optional: frozenset[str] = frozenset(),
) -> AnalysisResult:
    """Every rule: the sampled ones on the step's evidence, the others on their limits."""
    evidence: StepEvidence | str | None = None  # None: no step, so nothing was counted
    if any(name in measurements for name in EVIDENCE_NAMES):
        try:
            evidence = step_evidence(measurements)
        except EvidenceError as exc:
            evidence = str(exc)
    metrics = []
    for rule in RULES:
        if rule.name in SEQUENTIAL_RULES:
            metric = sequential(rule.name, evidence, thresholds, alpha)
        else:
            metric = judge(rule, measurements, thresholds, min_sample_count=0)
        absent = rule.name in optional and has_no_data(measurements.get(rule.name))
        metrics.append(not_counted_if_absent(metric, absent))
    return result_of(tuple(metrics), measurements, at)


def sequential(
    name: str, evidence: StepEvidence | str | None, thresholds: Thresholds, alpha: float
) -> MetricResult:
    """One sampled rule's verdict, with the bounds and the documents behind it."""
    limit = thresholds.limit(next(rule for rule in RULES if rule.name == name))
    if evidence is None:
        message = f"{name}: no step in progress, no evidence counted"
        return MetricResult(name, None, limit, Verdict.INCONCLUSIVE, message)
    if isinstance(evidence, str):
        return MetricResult(name, None, limit, Verdict.ERROR, f"{name}: {evidence}")
    if name == ERROR_RATE:
        rate = judge_error_rate(evidence.failures, evidence.documents, limit, alpha)
        bounds = Evidence(rate.interval.lower, rate.interval.upper, evidence.documents)
        return MetricResult(
            name, rate.interval.estimate, limit, rate.verdict, rate.message, evidence=bounds
        )
    latency = judge_latency(
        evidence.temporal,
        evidence.legacy,
        evidence.le,
        max_ratio=limit,
        quantile=thresholds[LATENCY_QUANTILE],
        alpha=alpha,
        min_delta_seconds=thresholds[MIN_LATENCY_DELTA],
    )
    slow, base = latency.temporal, latency.legacy
    ratio = _divide(slow.estimate, base.estimate)
    lower, upper = _divide(slow.lower, base.upper), _divide(slow.upper, base.lower)
    bounds = Evidence(lower, upper, slow.n)
    return MetricResult(name, ratio, limit, latency.verdict, latency.message, evidence=bounds)


def _divide(top: float, bottom: float) -> float:
    """top / bottom for bounds: x/0 is +inf (unbounded), anything/inf is 0, 0/0 is NaN."""
    if math.isnan(top) or math.isnan(bottom) or (top == 0 and bottom == 0):
        return math.nan
    if bottom == 0:
        return math.inf
    return top / bottom

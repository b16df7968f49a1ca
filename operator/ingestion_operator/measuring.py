"""Measuring a rollout's rules: the provider a spec names, its queries (and, for the
sequential judge, the evidence since the step began), one batched request, and the pure
judge the spec names applied to the answers.

The handlers call `measure` (I/O, in a thread: providers are synchronous) and then the
pure `judge_analysis` and `preflight`; a provider is shared by every rollout using the
same backend and URL (one HTTP session), and its outages are reported once, not per
rollout and query (outages.py).
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Mapping
from datetime import datetime, timedelta

import prometheus_client

from ingestion_operator.analysis import (
    QUERY_NAMES,
    QUEUE_DEPTH,
    AnalysisResult,
    Measurement,
    assess,
)
from ingestion_operator.analysis.evidence import EVIDENCE_NAMES
from ingestion_operator.analysis.sequential_judge import assess_sequential
from ingestion_operator.metricproviders import MetricProvider, make_provider
from ingestion_operator.outages import Outages
from ingestion_operator.spec import AnalysisSpec, Judge

ANALYSES = prometheus_client.Counter(
    "ingestionrollout_analysis", "Analyses run, by verdict", ["verdict"]
)
OUTAGES = Outages()


@functools.cache
def provider_for(kind: str, url: str) -> MetricProvider:
    """One provider (one HTTP session) per backend, shared by the rollouts using it."""
    return make_provider(kind, url=url)


def _measure(
    provider: MetricProvider, spec: AnalysisSpec, step_age: timedelta | None
) -> dict[str, Measurement]:
    """Every query's measurement; queries the provider cannot build are errors, as data."""
    try:
        queries = provider.queries(spec)
        if spec.judge == Judge.SEQUENTIAL and step_age is not None:
            queries |= provider.evidence_queries(spec, int(step_age.total_seconds()))
    except ValueError as exc:
        names = (*QUERY_NAMES, *EVIDENCE_NAMES)
        return {name: Measurement(error=f"no query: {exc}") for name in names}
    return provider.measure(queries)


async def measure(spec: AnalysisSpec, step_age: timedelta | None = None) -> dict[str, Measurement]:
    """Measure with the spec's provider (the evidence too, over `step_age`, for the
    sequential judge), and note whether the provider answered at all."""
    provider = provider_for(spec.provider, spec.prometheus_url)
    measurements = await asyncio.to_thread(_measure, provider, spec, step_age)
    OUTAGES.observe(f"{spec.provider} {spec.prometheus_url}", measurements)
    return measurements


def judge_analysis(
    spec: AnalysisSpec, measurements: Mapping[str, Measurement], now: datetime
) -> AnalysisResult:
    """The rollout's verdict on its measurements by the judge its spec names, counted in
    the operator's metrics. Without a step (no evidence measured) the sequential judge's
    rules are Inconclusive, which neither promotes nor rolls back."""
    optional = spec.optional_rules
    if spec.judge == Judge.SEQUENTIAL:
        result = assess_sequential(measurements, spec.thresholds, spec.alpha, now, optional)
    else:
        result = assess(measurements, spec.thresholds, spec.min_sample_count, now, optional)
    ANALYSES.labels(verdict=result.verdict.value).inc()
    return result


def backlog(measurements: Mapping[str, Measurement] | None) -> float | None:
    """The task-queue backlog, for draining workers after traffic went down (None: unknown)."""
    queue = (measurements or {}).get(QUEUE_DEPTH)
    if queue is None or queue.error is not None or queue.value is None:
        return None
    return queue.value if math.isfinite(queue.value) else None

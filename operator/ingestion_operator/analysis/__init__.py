"""Rollout analysis, provider-neutral: the rules and their thresholds (rules), what the
measurements mean (types), how they are judged (assess; sequential, on the evidence since
the step began) and whether every rule can see before the first shift (preflight), with
messages whose numbers show the comparison (numbers). Fetching, and the query
language that fetching needs, live in `ingestion_operator.metricproviders`, so the
judging stays pure and testable.
"""

from ingestion_operator.analysis.assess import assess, overall
from ingestion_operator.analysis.preflight import Preflight, preflight
from ingestion_operator.analysis.rules import (
    DB_CONNECTION_ERRORS,
    ERROR_RATE,
    LATENCY_DELTA,
    LATENCY_QUANTILE,
    LATENCY_RATIO,
    MIN_LATENCY_DELTA,
    QUERY_NAMES,
    QUEUE_DEPTH,
    RULES,
    RULES_BY_NAME,
    SAMPLE_COUNT,
    THRESHOLD_KEYS,
    Rule,
    Thresholds,
)
from ingestion_operator.analysis.types import (
    AnalysisResult,
    Evidence,
    Measurement,
    MetricResult,
    Verdict,
)

__all__ = [
    "DB_CONNECTION_ERRORS",
    "ERROR_RATE",
    "LATENCY_DELTA",
    "LATENCY_QUANTILE",
    "LATENCY_RATIO",
    "MIN_LATENCY_DELTA",
    "QUERY_NAMES",
    "QUEUE_DEPTH",
    "RULES",
    "RULES_BY_NAME",
    "SAMPLE_COUNT",
    "THRESHOLD_KEYS",
    "AnalysisResult",
    "Evidence",
    "Measurement",
    "MetricResult",
    "Preflight",
    "Rule",
    "Thresholds",
    "Verdict",
    "assess",
    "overall",
    "preflight",
]

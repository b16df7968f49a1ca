"""Rollout analysis, provider-neutral: the rules and their thresholds (rules), what the
measurements mean (types) and how they are judged (assess). Fetching, and the query
language that fetching needs, live in `ingestion_operator.metricproviders`, so the
judging stays pure and testable.
"""

from ingestion_operator.analysis.assess import assess, overall
from ingestion_operator.analysis.rules import (
    DB_CONNECTION_ERRORS,
    ERROR_RATE,
    LATENCY_QUANTILE,
    LATENCY_RATIO,
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
    Measurement,
    MetricResult,
    Verdict,
)

__all__ = [
    "DB_CONNECTION_ERRORS",
    "ERROR_RATE",
    "LATENCY_QUANTILE",
    "LATENCY_RATIO",
    "QUERY_NAMES",
    "QUEUE_DEPTH",
    "RULES",
    "RULES_BY_NAME",
    "SAMPLE_COUNT",
    "THRESHOLD_KEYS",
    "AnalysisResult",
    "Measurement",
    "MetricResult",
    "Rule",
    "Thresholds",
    "Verdict",
    "assess",
    "overall",
]

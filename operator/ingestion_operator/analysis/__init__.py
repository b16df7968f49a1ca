"""Rollout analysis: what the measurements mean (types), which PromQL measures them
(queries) and how they are judged (assess). Fetching lives in
`ingestion_operator.metricproviders`, so the judging stays pure and testable.
"""

from ingestion_operator.analysis.assess import RULES, assess, overall
from ingestion_operator.analysis.queries import default_queries, resolve_queries
from ingestion_operator.analysis.types import (
    DB_CONNECTION_ERRORS,
    ERROR_RATE,
    LATENCY_RATIO,
    QUERY_NAMES,
    QUEUE_DEPTH,
    RULE_NAMES,
    SAMPLE_COUNT,
    AnalysisResult,
    Measurement,
    MetricResult,
    Thresholds,
    Verdict,
)

__all__ = [
    "DB_CONNECTION_ERRORS",
    "ERROR_RATE",
    "LATENCY_RATIO",
    "QUERY_NAMES",
    "QUEUE_DEPTH",
    "RULES",
    "RULE_NAMES",
    "SAMPLE_COUNT",
    "AnalysisResult",
    "Measurement",
    "MetricResult",
    "Thresholds",
    "Verdict",
    "assess",
    "default_queries",
    "overall",
    "resolve_queries",
]

"""The worker's metrics. Two belong to the metric contract (their names come from
ingestion_contract.metrics, which the operator's queries are written with):

- ingestion_db_connection_errors_total{database}: feeds the "DB errors per minute" rollback rule.
- temporal_task_queue_backlog{task_queue}: feeds the backlog rollback rule.

The others are for people: ingestion_activity_duration_seconds{activity} and
ingestion_activity_failures_total{activity,error_type}.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from ingestion_contract import metrics as contract
from prometheus_client import Counter, Gauge, Histogram

from ingestion_worker.errors import AboveInlineLimit

DB_CONNECTION_ERRORS = Counter(
    contract.DB_CONNECTION_ERRORS_TOTAL,
    "Failed attempts to reach a database (connection refused, lost, timed out).",
    [contract.DATABASE_LABEL],
)
ACTIVITY_DURATION = Histogram(
    "ingestion_activity_duration_seconds",
    "Wall time of one pipeline step attempt.",
    ["activity"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ACTIVITY_FAILURES = Counter(
    "ingestion_activity_failures_total",
    "Failed pipeline step attempts, by error type.",
    ["activity", "error_type"],
)
TASK_QUEUE_BACKLOG = Gauge(
    contract.TASK_QUEUE_BACKLOG,
    "Tasks waiting in the Temporal task queue (workflow + activity), refreshed periodically.",
    [contract.TASK_QUEUE_LABEL],
)


@contextmanager
def observe_step(activity: str) -> Iterator[None]:
    """Time a step attempt and count its failure by the exception's class name (a document
    left to the chain of activities by the inline group is neither: it was not read)."""
    started = time.perf_counter()
    try:
        yield
    except AboveInlineLimit:
        raise
    except BaseException as exc:
        ACTIVITY_FAILURES.labels(activity, type(exc).__name__).inc()
        ACTIVITY_DURATION.labels(activity).observe(time.perf_counter() - started)
        raise
    ACTIVITY_DURATION.labels(activity).observe(time.perf_counter() - started)

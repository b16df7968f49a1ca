"""The names of the metric contract: what the router and the worker export and the
operator's queries read.

The rollback rules are only as good as the agreement on these names: a renamed series
reads as "no data" (or, where absence means zero, as a healthy 0) instead of an error.
So the exporters (ingestion_api.metrics, ingestion_worker.metrics) define their series
with these constants and the Prometheus provider builds its PromQL from the same ones.
"""

from __future__ import annotations

from typing import Final

# Router (ingestion API): one sample per finished document.
DOCUMENTS_TOTAL: Final = "ingestion_documents_total"  # counter {path, outcome}
DURATION_SECONDS: Final = "ingestion_duration_seconds"  # histogram {path}
ERRORS_TOTAL: Final = "ingestion_errors_total"  # counter {path, error_type}

# Worker.
DB_CONNECTION_ERRORS_TOTAL: Final = "ingestion_db_connection_errors_total"  # counter {database}
TASK_QUEUE_BACKLOG: Final = "temporal_task_queue_backlog"  # gauge {task_queue}

# Labels and their values.
PATH_LABEL: Final = "path"
OUTCOME_LABEL: Final = "outcome"
ERROR_TYPE_LABEL: Final = "error_type"
DATABASE_LABEL: Final = "database"
TASK_QUEUE_LABEL: Final = "task_queue"

PATH_TEMPORAL: Final = "temporal"
PATH_LEGACY: Final = "legacy"
PATHS: Final = (PATH_TEMPORAL, PATH_LEGACY)

OUTCOME_SUCCESS: Final = "success"
OUTCOME_FAILURE: Final = "failure"
OUTCOMES: Final = (OUTCOME_SUCCESS, OUTCOME_FAILURE)


def histogram_buckets(histogram: str) -> str:
    """The series a histogram's buckets are exported as (what histogram_quantile reads)."""
    return f"{histogram}_bucket"

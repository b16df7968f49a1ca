"""The router's metrics. The first three are the metric contract: their names come from
ingestion_contract.metrics, which the operator's queries are written with.

- ingestion_documents_total{path,outcome}: one per finished document
- ingestion_duration_seconds{path}: accept -> finished, 5 ms .. 60 s buckets
- ingestion_errors_total{path,error_type}
- ingestion_shadow_comparisons_total, ingestion_shadow_mismatches_total
- ingestion_rollout_percentage lives with the routing source (routing_source.py).
"""

from __future__ import annotations

from ingestion_contract import metrics as contract
from prometheus_client import Counter, Gauge, Histogram

DOCUMENTS = Counter(
    contract.DOCUMENTS_TOTAL,
    "Finished documents by path and outcome.",
    [contract.PATH_LABEL, contract.OUTCOME_LABEL],
)
# Every path/outcome series exists from the start at 0. A series born at its first
# increment is invisible to increase()/rate() at that sample (they need two), so the
# first failed Temporal document would not count toward the error rate.
for _path in contract.PATHS:
    for _outcome in contract.OUTCOMES:
        DOCUMENTS.labels(_path, _outcome)
DURATION = Histogram(
    contract.DURATION_SECONDS,
    "End-to-end time of one document, from acceptance to its result.",
    [contract.PATH_LABEL],
    buckets=(
        0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
        0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    ),
)  # fmt: skip
ERRORS = Counter(
    contract.ERRORS_TOTAL,
    "Failed documents by path and error type.",
    [contract.PATH_LABEL, contract.ERROR_TYPE_LABEL],
)
SHADOW_COMPARISONS = Counter(
    "ingestion_shadow_comparisons_total", "Documents run on both paths and compared."
)
SHADOW_MISMATCHES = Counter(
    "ingestion_shadow_mismatches_total", "Shadow comparisons whose results differed."
)
IN_FLIGHT = Gauge("ingestion_in_flight_documents", "Accepted documents not yet finished.")
REJECTED = Counter(
    "ingestion_rejected_total", "Requests refused for overload (429/503).", ["reason"]
)

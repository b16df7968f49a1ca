"""The router's metric contract (exact names: the operator's default PromQL uses them).

- ingestion_documents_total{path,outcome}: one per finished document
- ingestion_duration_seconds{path}: accept -> finished, 5 ms .. 60 s buckets
- ingestion_errors_total{path,error_type}
- ingestion_shadow_comparisons_total, ingestion_shadow_mismatches_total
- ingestion_rollout_percentage lives with the routing source (routing_source.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DOCUMENTS = Counter(
    "ingestion_documents_total", "Finished documents by path and outcome.", ["path", "outcome"]
)
# Every path/outcome series exists from the start at 0. A series born at its first
# increment is invisible to increase()/rate() at that sample (they need two), so the
# first failed Temporal document would not count toward the error rate.
for _path in ("temporal", "legacy"):
    for _outcome in ("success", "failure"):
        DOCUMENTS.labels(_path, _outcome)
DURATION = Histogram(
    "ingestion_duration_seconds",
    "End-to-end time of one document, from acceptance to its result.",
    ["path"],
    buckets=(
        0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
        0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    ),
)  # fmt: skip
ERRORS = Counter(
    "ingestion_errors_total", "Failed documents by path and error type.", ["path", "error_type"]
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

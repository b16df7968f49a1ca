"""The router's metrics. The first three are the metric contract: their names come from
ingestion_contract.metrics, which the operator's queries are written with.

- ingestion_documents_total{path,outcome}: one per finished document
- ingestion_duration_seconds{path}: accept -> finished, 5 ms .. 60 s buckets
- ingestion_errors_total{path,error_type}
- ingestion_shadow_comparisons_total, ingestion_shadow_mismatches_total
- ingestion_in_flight_documents, ingestion_rejected_total{reason},
  ingestion_resumed_documents_total{path}
- ingestion_status_reads_total{answered_from}, ingestion_temporal_status_calls_total{call}:
  what status reads cost (status_reader.py)
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
# Both paths' latency series exist from the start as well: before the first shift off 0%
# the operator's pre-flight requires every rule's series to exist (the latency rule reads
# these buckets), and a Temporal child born at the first document would refuse the start.
for _path in contract.PATHS:
    DURATION.labels(_path)
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
    "ingestion_rejected_total",
    "Documents refused with 429/503, by reason: in_flight, temporal_unavailable, "
    "temporal_timeout (no answer within API_TEMPORAL_TIMEOUT_SECONDS), journal_unavailable.",
    ["reason"],
)
RESUMED = Counter(
    "ingestion_resumed_documents_total",
    "Accepted documents without a result found in the journal at start-up and run again.",
    ["path"],
)
STATUS_READS = Counter(
    "ingestion_status_reads_total",
    "Status reads by what answered them: progress (a legacy run here), journal (a finished "
    "document's record), query (an open workflow's get_status, shared and reused), "
    "temporal_record (a closed workflow's record in Temporal).",
    ["answered_from"],
)
TEMPORAL_STATUS_CALLS = Counter(
    "ingestion_temporal_status_calls_total",
    "Calls to Temporal made for status reads and waits, by call: query (a worker answers), "
    "describe and result (the frontend answers), long_poll (one per waited-on workflow).",
    ["call"],
)

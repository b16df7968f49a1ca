"""The default PromQL for each analysis rule, written over the metric contract
(README: "Router metrics" and "Worker metrics"), and the CR's per-query overrides.

Every query is an instant query that must come back as at most one series (the
provider reports more as an Error rather than guessing an aggregation), so each
one aggregates with sum/max. No-data semantics are decided here, per query:

- `or vector(0)` only where a missing series truly means zero. prometheus_client
  exports a labelled counter child only after its first increment, so "no failures
  yet" and "no DB connection errors yet" have no series at all: the errorRate
  numerator and dbConnectionErrorsPerMinute fall back to 0. The price: a renamed
  DB-error metric would read as 0 forever, so that contract name is tested.
- Everything else stays absent when absent: no Temporal traffic leaves sampleCount
  empty and errorRate empty or 0/0 = NaN; no backlog gauge means the worker is not
  scraped. Both are Inconclusive in `assess`, never a Pass.
- latencyRatio divides Temporal by legacy latency. At 100% there is no legacy
  traffic, so the denominator is NaN or empty and the rule is Inconclusive: honest,
  and left to the operator (decisions.promotable lets the final step through on an
  Inconclusive latencyRatio alone when every other rule passes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ingestion_operator.analysis.types import (
    DB_CONNECTION_ERRORS,
    ERROR_RATE,
    LATENCY_RATIO,
    QUERY_NAMES,
    QUEUE_DEPTH,
    SAMPLE_COUNT,
)

_WINDOW = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _quote(value: str) -> str:
    """A PromQL string literal (backslashes and double quotes escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _selector(labels: Mapping[str, str], **matchers: str) -> str:
    """`{a="x",b="y"}` from the call's matchers plus the scoping labels ("" if none)."""
    merged = {**labels, **matchers}
    for name in merged:
        if not _LABEL_NAME.match(name):
            raise ValueError(f"invalid label name {name!r}")
    if not merged:
        return ""
    return "{" + ",".join(f"{k}={_quote(v)}" for k, v in merged.items()) + "}"


def default_queries(
    window: str,
    quantile: float,
    task_queue_hint: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """PromQL per query name over the last `window` (a PromQL duration such as "2m").

    task_queue_hint narrows the backlog to one Temporal task queue. labels are
    equality matchers added to every series (e.g. {"namespace": "prod"}), for a
    Prometheus that scrapes more than one ingestion deployment.
    """
    if not _WINDOW.match(window):
        raise ValueError(f"invalid window {window!r}: use a PromQL duration such as 2m or 90s")
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1]: {quantile}")
    scope = dict(labels or {})
    temporal = _selector(scope, path="temporal")
    failed = _selector(scope, path="temporal", outcome="failure")
    legacy = _selector(scope, path="legacy")
    queue = {"task_queue": task_queue_hint} if task_queue_hint else {}
    documents = f"sum(increase(ingestion_documents_total{temporal}[{window}]))"
    failures = f"sum(increase(ingestion_documents_total{failed}[{window}]))"

    def latency(selector: str) -> str:
        buckets = f"rate(ingestion_duration_seconds_bucket{selector}[{window}])"
        return f"histogram_quantile({float(quantile)!r}, sum by (le) ({buckets}))"

    db_errors = f"rate(ingestion_db_connection_errors_total{_selector(scope)}[{window}])"
    return {
        SAMPLE_COUNT: documents,
        ERROR_RATE: f"({failures} or vector(0)) / {documents}",
        LATENCY_RATIO: f"{latency(temporal)} / {latency(legacy)}",
        QUEUE_DEPTH: f"max(temporal_task_queue_backlog{_selector(scope, **queue)})",
        DB_CONNECTION_ERRORS: f"sum({db_errors}) * 60 or vector(0)",
    }


def resolve_queries(defaults: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The defaults with the CR's `analysis.queries` applied.

    An override for a name that is not a query is a ValueError (a typo must not
    leave the default silently in place); so is an empty one.
    """
    known = set(defaults) | set(QUERY_NAMES)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown query overrides {unknown}; known: {', '.join(sorted(known))}")
    empty = sorted(name for name, query in overrides.items() if not str(query).strip())
    if empty:
        raise ValueError(f"empty query overrides {empty}")
    return {**defaults, **{name: str(query) for name, query in overrides.items()}}

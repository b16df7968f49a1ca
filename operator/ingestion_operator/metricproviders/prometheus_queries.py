"""The Prometheus provider's query for each analysis rule, written over the metric
contract (ingestion_contract.metrics; README: "Router metrics" and "Worker metrics"),
and the CR's per-query overrides. The rules themselves are provider-neutral
(analysis/rules.py); their PromQL is this provider's business, so it lives here.

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
  Inconclusive path-comparing rule alone when every other rule passes).
  latencyDeltaSeconds is the same two quantiles' difference, compared with the rule's
  floor (minLatencyDeltaSeconds).
- dbConnectionErrorsPerMinute is a per-minute rate of a rare counter, so it is taken
  over spec.analysis.counterWindow (the CRD requires >= 1m), not the sliding window:
  over a few seconds, one error reads as 0 or as a jump of 60/window per minute.

The sequential judge's evidence (analysis/evidence.py) is counted since the step began:
increase() over a range equal to the step's age, the histograms `sum by (le)` (one
series per bucket bound). They take the spec's metricLabels but no overrides: they are
the contract's own series.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ingestion_contract import metrics as contract
from ingestion_contract.crd_defaults import SPEC

from ingestion_operator.analysis.evidence import (
    HISTOGRAMS,
    LEGACY_BUCKETS,
    TEMPORAL_BUCKETS,
    TEMPORAL_DOCUMENTS,
    TEMPORAL_FAILURES,
)
from ingestion_operator.analysis.rules import (
    DB_CONNECTION_ERRORS,
    ERROR_RATE,
    LATENCY_DELTA,
    LATENCY_QUANTILE,
    LATENCY_RATIO,
    QUERY_NAMES,
    QUEUE_DEPTH,
    SAMPLE_COUNT,
)
from ingestion_operator.spec import AnalysisSpec, query_overrides

_WINDOW = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_COUNTER_WINDOW: str = SPEC["analysis"]["counterWindow"]
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _quote(value: str) -> str:
    """A PromQL string literal (backslashes and double quotes escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True)
class _Scope:
    """What every query is built from: the ranges, the latency quantile, scoping labels."""

    window: str
    quantile: float
    labels: Mapping[str, str]
    task_queue: str | None
    counter_window: str

    def select(self, **matchers: str) -> str:
        """`{a="x",b="y"}` from the scoping labels plus `matchers` ("" if none)."""
        merged = {**self.labels, **matchers}
        for name in merged:
            if not _LABEL_NAME.match(name):
                raise ValueError(f"invalid label name {name!r}")
        if not merged:
            return ""
        return "{" + ",".join(f"{k}={_quote(v)}" for k, v in merged.items()) + "}"

    def temporal(self, **matchers: str) -> str:
        return self.select(**{contract.PATH_LABEL: contract.PATH_TEMPORAL, **matchers})

    def documents(self, selector: str) -> str:
        return f"sum(increase({contract.DOCUMENTS_TOTAL}{selector}[{self.window}]))"

    def latency(self, path: str) -> str:
        series = contract.histogram_buckets(contract.DURATION_SECONDS)
        buckets = f"rate({series}{self.select(**{contract.PATH_LABEL: path})}[{self.window}])"
        return f"histogram_quantile({float(self.quantile)!r}, sum by (le) ({buckets}))"


def _sample_count(s: _Scope) -> str:
    return s.documents(s.temporal())


def _error_rate(s: _Scope) -> str:
    failures = s.documents(s.temporal(**{contract.OUTCOME_LABEL: contract.OUTCOME_FAILURE}))
    return f"({failures} or vector(0)) / {_sample_count(s)}"


def _latency_ratio(s: _Scope) -> str:
    return f"{s.latency(contract.PATH_TEMPORAL)} / {s.latency(contract.PATH_LEGACY)}"


def _latency_delta(s: _Scope) -> str:
    return f"{s.latency(contract.PATH_TEMPORAL)} - {s.latency(contract.PATH_LEGACY)}"


def _queue_depth(s: _Scope) -> str:
    queue = {contract.TASK_QUEUE_LABEL: s.task_queue} if s.task_queue else {}
    return f"max({contract.TASK_QUEUE_BACKLOG}{s.select(**queue)})"


def _db_connection_errors(s: _Scope) -> str:
    errors = f"rate({contract.DB_CONNECTION_ERRORS_TOTAL}{s.select()}[{s.counter_window}])"
    return f"sum({errors}) * 60 or vector(0)"


#: The PromQL of every query name (analysis.rules.QUERY_NAMES): the sample count, every
#: rule in analysis.rules.RULES, and the floor measurement of the latency rule.
QUERIES: dict[str, Callable[[_Scope], str]] = {
    SAMPLE_COUNT: _sample_count,
    ERROR_RATE: _error_rate,
    LATENCY_RATIO: _latency_ratio,
    QUEUE_DEPTH: _queue_depth,
    DB_CONNECTION_ERRORS: _db_connection_errors,
    LATENCY_DELTA: _latency_delta,
}


def _check_window(window: str, what: str = "window") -> None:
    if not _WINDOW.match(window):
        raise ValueError(f"invalid {what} {window!r}: use a PromQL duration such as 2m or 90s")


def default_queries(
    window: str,
    quantile: float,
    task_queue_hint: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    counter_window: str | None = None,
) -> dict[str, str]:
    """PromQL per query name over the last `window` (a PromQL duration such as "2m").

    task_queue_hint narrows the backlog to one Temporal task queue. labels are
    equality matchers added to every series (e.g. {"namespace": "prod"}), for a
    Prometheus that scrapes more than one ingestion deployment. counter_window is the
    range of the per-minute counter rules (default: the CRD's counterWindow).
    """
    counter_window = counter_window or _COUNTER_WINDOW
    _check_window(window)
    _check_window(counter_window, "counterWindow")
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1]: {quantile}")
    scope = _Scope(window, quantile, dict(labels or {}), task_queue_hint, counter_window)
    return {name: QUERIES[name](scope) for name in QUERY_NAMES}


def evidence_selectors(analysis: AnalysisSpec) -> dict[str, str]:
    """The counters behind each evidence query, as PromQL series selectors: what
    `evidence_queries` takes the increase of, and what a replay reads raw (replay/)."""
    scope = _Scope("1s", 0.5, analysis.metric_labels, None, "1m")
    failed = scope.temporal(**{contract.OUTCOME_LABEL: contract.OUTCOME_FAILURE})
    buckets = contract.histogram_buckets(contract.DURATION_SECONDS)

    def histogram(path: str) -> str:
        return f"{buckets}{scope.select(**{contract.PATH_LABEL: path})}"

    return {
        TEMPORAL_DOCUMENTS: f"{contract.DOCUMENTS_TOTAL}{scope.temporal()}",
        TEMPORAL_FAILURES: f"{contract.DOCUMENTS_TOTAL}{failed}",
        TEMPORAL_BUCKETS: histogram(contract.PATH_TEMPORAL),
        LEGACY_BUCKETS: histogram(contract.PATH_LEGACY),
    }


def evidence_queries(analysis: AnalysisSpec, seconds: int) -> dict[str, str]:
    """The sequential judge's counts over the last `seconds` (the step's age, >= 1): the
    increase of each selector, summed (`by (le)` for the histograms)."""
    window = f"{max(1, seconds)}s"
    return {
        name: f"sum{' by (le) ' if name in HISTOGRAMS else ''}(increase({selector}[{window}]))"
        for name, selector in evidence_selectors(analysis).items()
    }


def resolve_queries(defaults: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The defaults with the CR's `analysis.queries` applied.

    An override for a name that is not a query is a ValueError (a typo must not
    leave the default silently in place); so is an empty one (spec.query_overrides).
    """
    return {**defaults, **query_overrides(overrides)}


def queries_for(analysis: AnalysisSpec) -> dict[str, str]:
    """Every query a rollout's analysis runs: the defaults, then its overrides."""
    quantile = analysis.thresholds[LATENCY_QUANTILE]
    defaults = default_queries(
        analysis.window,
        quantile,
        labels=analysis.metric_labels,
        counter_window=analysis.counter_window,
    )
    return resolve_queries(defaults, analysis.queries)

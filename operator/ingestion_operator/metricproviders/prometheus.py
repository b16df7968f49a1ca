"""Prometheus as a metric provider: instant queries over its HTTP API.

Built on prometheus_api_client's `PrometheusConnect.custom_query`. What this module
adds is the translation of every outcome into a `Measurement`:

- one series (or a scalar) -> its value (NaN and +Inf kept: `assess` judges them);
- an empty result -> Measurement(None), "no data";
- several series -> Error: the query must aggregate; summing here would hide a
  missing `sum by` or a second deployment in the same Prometheus; except for the
  histogram queries of the sequential judge's evidence (analysis.evidence.HISTOGRAMS),
  whose series are told apart by `le` and become Measurement.buckets;
- refused connections, timeouts, HTTP errors, PromQL errors -> Error with a message
  naming the server and quoting Prometheus's own reason.

Retries: one immediate retry of a failed *connect* (nothing was sent, so it is
safe), none after a request went out: the next analysis interval is the retry, and
a stuck Prometheus must not hold an analysis for minutes of backoff.

Batching: the operator analyses many rollouts, each with five queries. One HTTP
request per analysis carries all of them: each query is wrapped in
`label_replace(..., "ingestion_rule", "<name>", "", "")` and joined with `or`, so
the answer's series are told apart by that label (distinct label sets, so `or`
drops none). If Prometheus rejects the batch (bad PromQL in an override, or a query
that returns a scalar, which label_replace cannot take), the queries run one by one
so that the error lands on the rule that caused it. A connection failure or a
timeout applies to every rule alike and is not retried query by query.

Over a time range (`measure_range`, `raw_series`, for `kubectl ingestionrollout replay`):
the same queries, batched the same way, as range queries, and the evidence counters'
raw samples; prometheus_range.py says how each answer maps onto the live one.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from ingestion_operator.analysis.evidence import HISTOGRAMS
from ingestion_operator.analysis.types import Measurement
from ingestion_operator.metricproviders.prometheus_queries import (
    evidence_queries,
    evidence_selectors,
    queries_for,
)
from ingestion_operator.metricproviders.prometheus_range import (
    RawSeries,
    at_instants,
    chunks,
    merge_raw,
    windows,
)
from ingestion_operator.spec import AnalysisSpec

RULE_LABEL = "ingestion_rule"
# What a query can fail with; anything else is a bug and propagates.
QUERY_ERRORS = (
    requests.exceptions.RequestException,
    PrometheusApiClientException,
    KeyError,
    TypeError,
)
_HTTP_ERROR = re.compile(r"HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)
_OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class PrometheusProvider:
    """Instant PromQL queries against the Prometheus at `url`."""

    def __init__(self, url: str, timeout: float = 5.0, batch: bool = True) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0: {timeout}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.batch = batch
        #: HTTP requests sent to Prometheus (a replay reports how many it took).
        self.requests = 0
        retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0)
        self._client = PrometheusConnect(url=self.url, retry=retry)

    def __repr__(self) -> str:
        return f"PrometheusProvider(url={self.url!r}, timeout={self.timeout})"

    def queries(self, analysis: AnalysisSpec) -> dict[str, str]:
        """The PromQL of every rule (prometheus_queries.py), the spec's overrides applied."""
        return queries_for(analysis)

    def evidence_queries(self, analysis: AnalysisSpec, seconds: int) -> dict[str, str]:
        """The sequential judge's counts over the step's age (prometheus_queries.py)."""
        return evidence_queries(analysis, seconds)

    def evidence_selectors(self, analysis: AnalysisSpec) -> dict[str, str]:
        """The counters the evidence queries take the increase of (prometheus_queries.py)."""
        return evidence_selectors(analysis)

    def measure(self, queries: Mapping[str, str]) -> dict[str, Measurement]:
        """Every query in one request when possible; one Measurement per name."""
        if not self.batch or len(queries) < 2:
            return {name: self.measure_one(query, name) for name, query in queries.items()}
        try:
            result = self._query(batched(queries))
        except PrometheusApiClientException:  # find the query Prometheus objects to
            return {name: self.measure_one(query, name) for name, query in queries.items()}
        except QUERY_ERRORS as exc:
            error = self._failure(exc)
            return {name: error for name in queries}
        return split_batch(result, queries)

    def measure_one(self, query: str, name: str = "") -> Measurement:
        """One instant query; never raises for a failed query."""
        try:
            result = self._query(query)
        except QUERY_ERRORS as exc:
            return self._failure(exc)
        return to_measurement(result, histogram=name in HISTOGRAMS)

    def _query(self, query: str, at: int | None = None) -> Any:
        # requests takes float seconds; the library annotates `int` but passes it through.
        params = {"time": at} if at is not None else None
        self.requests += 1
        return self._client.custom_query(query, params=params, timeout=cast(int, self.timeout))

    # Over a time range, for a replay of the analysis (prometheus_range.py says how).

    def measure_range(
        self, queries: Mapping[str, str], start: int, end: int, step: int
    ) -> dict[str, list[Measurement]]:
        """Each query at every instant start, start + step, ... <= end (unix seconds), as
        `measure` would have answered it there; batched like it, MAX_RANGE_POINTS instants
        a request. Errors are data, as in `measure`."""
        measured: dict[str, list[Measurement]] = {name: [] for name in queries}
        for times in windows(start, end, step):
            for name, values in self._measure_range(queries, times).items():
                measured[name].extend(values)
        return measured

    def _measure_range(
        self, queries: Mapping[str, str], times: range
    ) -> dict[str, list[Measurement]]:
        if not self.batch or len(queries) < 2:
            return {name: self._range_one(query, name, times) for name, query in queries.items()}
        try:
            result = self._query_range(batched(queries), times)
        except PrometheusApiClientException:  # find the query Prometheus objects to
            return {name: self._range_one(query, name, times) for name, query in queries.items()}
        except QUERY_ERRORS as exc:
            return {name: [self._failure(exc)] * len(times) for name in queries}
        if not isinstance(result, list):
            return {name: at_instants(result, times, to_measurement) for name in queries}
        rules = by_rule(result)
        return {name: at_instants(rules.get(name, []), times, _reader(name)) for name in queries}

    def _range_one(self, query: str, name: str, times: range) -> list[Measurement]:
        try:
            result = self._query_range(query, times)
        except QUERY_ERRORS as exc:
            return [self._failure(exc)] * len(times)
        return at_instants(result, times, _reader(name))

    def _query_range(self, query: str, times: range) -> Any:
        start, end = (datetime.fromtimestamp(t, UTC) for t in (times[0], times[-1]))
        step, timeout = str(times.step), cast(int, self.timeout)
        self.requests += 1
        return self._client.custom_query_range(query, start, end, step, timeout=timeout)

    def raw_series(self, selector: str, start: int, end: int) -> tuple[RawSeries, ...] | str:
        """Every stored sample of `selector` from `start` to `end` (unix seconds), per
        series, read a chunk at a time as `selector[Ns]`; or why it could not be read."""
        answers = []
        for begin, upto in chunks(start, end):
            try:
                answers.append(self._query(f"{selector}[{upto - begin}s]", at=upto))
            except QUERY_ERRORS as exc:
                return self._failure(exc).error or "failed"
        try:
            return merge_raw(answers)
        except ValueError as exc:
            return f"Prometheus at {self.url}: {exc}"

    def version(self) -> str | None:
        """The server's version (/api/v1/status/buildinfo); None if it does not say."""
        try:
            url = f"{self.url}/api/v1/status/buildinfo"
            return str(requests.get(url, timeout=self.timeout).json()["data"]["version"])
        except (requests.exceptions.RequestException, ValueError, KeyError, TypeError):
            return None

    def _failure(self, exc: Exception) -> Measurement:
        """A failed request as a Measurement naming the server and the reason."""
        where = f"Prometheus at {self.url}"
        if isinstance(exc, requests.exceptions.Timeout):
            return Measurement(error=f"{where}: no answer in {self.timeout:g}s")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return Measurement(error=f"{where} unreachable: {_os_reason(exc)}")
        if isinstance(exc, requests.exceptions.RequestException):  # incl. a non-JSON 200
            return Measurement(error=f"{where}: {type(exc).__name__}: {exc}")
        if isinstance(exc, PrometheusApiClientException):
            return Measurement(error=f"{where} {_http_reason(exc)}")
        return Measurement(error=f"{where}: malformed answer ({exc!r})")


def _reader(name: str) -> Callable[[list[Any]], Measurement]:
    """How the answer of query `name` becomes a Measurement (its buckets, for a histogram)."""
    return functools.partial(to_measurement, histogram=name in HISTOGRAMS)


def batched(queries: Mapping[str, str]) -> str:
    """All queries as one PromQL expression whose series carry their rule's name."""
    return " or ".join(
        f'label_replace(({query}), "{RULE_LABEL}", "{name}", "", "")'
        for name, query in queries.items()
    )


def split_batch(result: Any, queries: Mapping[str, str]) -> dict[str, Measurement]:
    """The batched answer back into one Measurement per rule (absent rule: no data)."""
    if not isinstance(result, list):
        error = Measurement(error=f"unexpected batched result {result!r:.200}")
        return dict.fromkeys(queries, error)
    rules = by_rule(result)
    return {
        name: to_measurement(rules.get(name, []), histogram=name in HISTOGRAMS) for name in queries
    }


def by_rule(result: list[Any]) -> dict[str, list[Any]]:
    """A batched answer's series by the rule they carry (the rule label removed)."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for series in result:
        metric = dict(series.get("metric") or {}) if isinstance(series, dict) else {}
        rule = metric.pop(RULE_LABEL, None)
        grouped[str(rule)].append({**series, "metric": metric})
    return grouped


def to_measurement(result: Any, histogram: bool = False) -> Measurement:
    """`data.result` of an instant query -> Measurement (see the module docstring)."""
    try:
        if _is_sample(result):  # resultType scalar: [timestamp, "value"]
            return Measurement(float(result[1]))
        if not isinstance(result, list):
            return Measurement(error=f"unexpected query result {result!r:.200}")
        if not result:
            return Measurement(None)
        if histogram:
            return to_buckets(result)
        if len(result) > 1:
            labels = ", ".join(_labels(series) for series in result[:3])
            return Measurement(
                error=f"query returned {len(result)} series ({labels}, ...); aggregate it"
            )
        series = result[0]
        if "value" not in series:
            return Measurement(error="query returned a range vector; use an instant vector")
        return Measurement(float(series["value"][1]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return Measurement(error=f"malformed query result ({exc!r}): {result!r:.200}")


def to_buckets(result: list[Any]) -> Measurement:
    """One series per bucket bound -> Measurement.buckets, (le, count) in bound order."""
    buckets = sorted(
        (float(series["metric"]["le"]), float(series["value"][1])) for series in result
    )
    if len({le for le, _ in buckets}) != len(buckets):
        return Measurement(error="histogram query returned one bound twice; aggregate by le")
    return Measurement(buckets=tuple(buckets))


def _is_sample(result: Any) -> bool:
    return (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], int | float)
        and isinstance(result[1], str)
    )


def _labels(series: Any) -> str:
    metric = series.get("metric", {}) if isinstance(series, dict) else {}
    return "{" + ",".join(f"{k}={v!r}" for k, v in sorted(metric.items())) + "}"


def _os_reason(exc: Exception) -> str:
    """'Connection refused' out of requests' nested MaxRetryError text."""
    match = _OS_ERROR.search(str(exc))
    return match.group(1).strip() if match else str(exc)


def _http_reason(exc: PrometheusApiClientException) -> str:
    """'answered HTTP 400 (bad_data): 1:5: parse error: ...' from the library's message."""
    match = _HTTP_ERROR.match(str(exc))
    if not match:
        return f"failed: {exc}"
    status, raw = match.groups()
    try:
        body = json.loads(ast.literal_eval(raw))
        return f"answered HTTP {status} ({body.get('errorType', '?')}): {body['error']}"
    except (ValueError, SyntaxError, KeyError, TypeError, AttributeError):
        return f"answered HTTP {status}: {raw[:300]}"

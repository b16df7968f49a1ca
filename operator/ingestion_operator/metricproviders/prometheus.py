"""Prometheus as a metric provider: instant queries over its HTTP API.

Built on prometheus_api_client's `PrometheusConnect.custom_query`. What this module
adds is the translation of every outcome into a `Measurement`:

- one series (or a scalar) -> its value (NaN and +Inf kept: `assess` judges them);
- an empty result -> Measurement(None), "no data";
- several series -> Error: the query must aggregate; summing here would hide a
  missing `sum by` or a second deployment in the same Prometheus;
- refused connections, timeouts, HTTP errors, PromQL errors -> Error with a message
  naming the server and quoting Prometheus's own reason.

Retries: one immediate retry of a failed *connect* (nothing was sent, so it is
safe), none after a request went out: the next analysis interval is the retry, and
a stuck Prometheus must not hold an analysis for minutes of backoff.

Concurrency: the operator analyses many rollouts, each with five queries, from
kopf's handler threads; running one rollout's queries in a small thread pool
bounds an analysis by the slowest query (one timeout) rather than their sum.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from ingestion_operator.analysis.types import Measurement

MAX_WORKERS = 4  # per analysis; five default queries, so this is ~two round trips at most
_HTTP_ERROR = re.compile(r"HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)
_OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class PrometheusProvider:
    """Instant PromQL queries against the Prometheus at `url`."""

    def __init__(self, url: str, timeout: float = 5.0, max_workers: int = MAX_WORKERS) -> None:
        if timeout <= 0 or max_workers < 1:
            raise ValueError(f"timeout must be > 0 and max_workers >= 1: {timeout}, {max_workers}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_workers = max_workers
        retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0)
        self._client = PrometheusConnect(url=self.url, retry=retry)

    def __repr__(self) -> str:
        return f"PrometheusProvider(url={self.url!r}, timeout={self.timeout})"

    def measure(self, queries: Mapping[str, str]) -> dict[str, Measurement]:
        """Run every query concurrently; one Measurement per name, errors as data."""
        if not queries:
            return {}
        workers = min(self.max_workers, len(queries))
        with ThreadPoolExecutor(workers, thread_name_prefix="prometheus-query") as pool:
            futures = {name: pool.submit(self.measure_one, q) for name, q in queries.items()}
            return {name: future.result() for name, future in futures.items()}

    def measure_one(self, query: str) -> Measurement:
        """One instant query; never raises for a failed query."""
        try:
            # requests takes float seconds; the library annotates `int` but passes it through.
            result = self._client.custom_query(query, timeout=cast(int, self.timeout))
        except requests.exceptions.Timeout:
            return Measurement(error=f"Prometheus at {self.url}: no answer in {self.timeout:g}s")
        except requests.exceptions.ConnectionError as exc:
            return Measurement(error=f"Prometheus at {self.url} unreachable: {_os_reason(exc)}")
        except requests.exceptions.RequestException as exc:  # incl. a non-JSON 200 answer
            return Measurement(error=f"Prometheus at {self.url}: {type(exc).__name__}: {exc}")
        except PrometheusApiClientException as exc:
            return Measurement(error=f"Prometheus at {self.url} {_http_reason(exc)}")
        except (KeyError, TypeError) as exc:
            return Measurement(error=f"Prometheus at {self.url}: malformed answer ({exc!r})")
        return to_measurement(result)


def to_measurement(result: Any) -> Measurement:
    """`data.result` of an instant query -> Measurement (see the module docstring)."""
    try:
        if _is_sample(result):  # resultType scalar: [timestamp, "value"]
            return Measurement(float(result[1]))
        if not isinstance(result, list):
            return Measurement(error=f"unexpected query result {result!r:.200}")
        if not result:
            return Measurement(None)
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

"""A metrics provider that stops answering is one story, not a log line per query.

During a Prometheus outage every analysis of every rollout fails, and the HTTP library
logged each connect retry with the whole batched query in its URL (about 2 KB a line,
every second per rollout: issue 16, item 14). What an operator on call needs instead:
one warning when the provider stops answering, one when it answers again (with how
long it was gone), a gauge to alert on and a counter of the failed analyses. The
rollouts themselves report the outage in their status and Events (decisions: Error
verdicts, then onError).

An analysis counts as failed when every one of its queries failed: a bad PromQL
override fails one rule, not the provider.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import prometheus_client

from ingestion_operator.analysis import Measurement

logger = logging.getLogger(__name__)

UP = prometheus_client.Gauge(
    "ingestionrollout_metrics_provider_up",
    "1 while the metrics provider answers the analyses' queries, 0 during an outage",
    ["provider"],
)
FAILURES = prometheus_client.Counter(
    "ingestionrollout_metrics_provider_failures",
    "Analyses whose every query failed (provider unreachable, timing out or refusing)",
    ["provider"],
)


@dataclass
class _Outage:
    began: float
    failures: int
    first_error: str


class Outages:
    """Outage start and end per provider (e.g. "Prometheus at http://p:9090")."""

    def __init__(self) -> None:
        self._down: dict[str, _Outage] = {}

    def observe(self, provider: str, measurements: Mapping[str, Measurement]) -> None:
        """Record one analysis's answers; log only when the provider's state changes."""
        errors = [m.error for m in measurements.values() if m.error is not None]
        failed = bool(measurements) and len(errors) == len(measurements)
        outage = self._down.get(provider)
        if failed:
            FAILURES.labels(provider=provider).inc()
            UP.labels(provider=provider).set(0)
            if outage is None:
                self._down[provider] = _Outage(time.monotonic(), 1, errors[0])
                logger.warning(
                    "metrics provider down: %s; analyses using it are Error until it answers",
                    errors[0],
                )
            else:
                outage.failures += 1
            return
        UP.labels(provider=provider).set(1)
        if outage is not None:
            del self._down[provider]
            logger.warning(
                "metrics provider %s answers again after %.1f s (%d failed analyses; first: %s)",
                provider,
                time.monotonic() - outage.began,
                outage.failures,
                outage.first_error,
            )


class QueryRetryFilter(logging.Filter):
    """Drops urllib3's "Retrying ... /api/v1/query?query=<2 KB>" warnings: the provider's
    one connect retry is expected, and the outage is reported by `Outages` instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("Retrying") and "/api/v1/query" in text)


def quiet_query_retries() -> None:
    """Install QueryRetryFilter on urllib3's connection pool logger (once)."""
    pool = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, QueryRetryFilter) for f in pool.filters):
        pool.addFilter(QueryRetryFilter())

"""The API's metric contract, as the operator reads it: real Prometheus scraping a real replica.

The operator decides rollouts from PromQL over these series, so the test plants a
known mix on the legacy path (failures; a few slow documents) and checks that the
operator's kind of query gives back exactly what was planted.

Two things keep the numbers exact:
- prometheus_client's registry is process-wide, and earlier tests of the session have
  ingested documents too: the document/duration/error metrics are cleared (after a
  warm-up document, so no cold connection lands in the histogram) before Prometheus
  is pointed at the replica, under a job name of its own.
- scrapes lag: every document is finished (`service.drain()`) before Prometheus is
  polled, and the test waits until the scraped totals reach the planted counts.

Prometheus queries block, and the replica serves /metrics from this test's event
loop, so they run in a thread (asyncio.to_thread).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from ingestion_api.metrics import DOCUMENTS, DURATION, ERRORS
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.storage import FetchedObject
from sample_documents import put_text_documents

pytestmark = pytest.mark.asyncio

SLOW_SECONDS = 2.0  # a bucket bound of ingestion_duration_seconds, far above a fast document
SCRAPE_INTERVAL = "500ms"
SCRAPE_TIMEOUT = 30.0  # first data comes 5-7 s after Prometheus starts
LEGACY = 'path="legacy"'


class SlowPipeline(Pipeline):
    """The real pipeline; downloads of documents whose id starts with "slow-" take 2 s more."""

    @classmethod
    def around(cls, pipeline: Pipeline) -> SlowPipeline:
        p = pipeline
        return cls(p.settings, p.store, p.extractor, p.embedder, p.graph)

    def fetch(self, bucket: str, key: str, **kwargs: Any) -> FetchedObject:
        if key.rsplit("/", 1)[-1].startswith("slow-"):
            time.sleep(SLOW_SECONDS)
        return super().fetch(bucket, key, **kwargs)


async def ingest_all(replica: Any, ids: list[str], at_once: int = 4) -> None:
    """POST the documents `at_once` at a time, each group finished before the next."""
    for start in range(0, len(ids), at_once):
        group = ids[start : start + at_once]
        await asyncio.gather(*(replica.ingest(d, key=f"documents/crm/{d}") for d in group))
        await replica.service.drain()


async def scraped_replica(
    start_api: Any, prometheus: Any, s3: Any, bucket: str, slow: bool = False
) -> tuple[Any, str]:
    """A legacy-path replica with fresh metrics, scraped by Prometheus as a job of its own."""
    replica = await start_api(routing=StaticRoutingSource(RoutingConfig(percentage=0)))
    if slow:
        replica.service.pipeline = SlowPipeline.around(replica.service.pipeline)
    put_text_documents(s3, bucket, ["warm-up"])
    await ingest_all(replica, ["warm-up"])
    for metric in (DOCUMENTS, DURATION, ERRORS):
        metric.clear()
    job = f"api-{uuid.uuid4().hex[:8]}"
    target = replica.url.removeprefix("http://")
    await asyncio.to_thread(prometheus.set_targets, {job: [target]}, SCRAPE_INTERVAL)
    return replica, job


async def query(prometheus: Any, promql: str) -> float | None:
    """The single value of an instant query (None when it has no result)."""
    result = await asyncio.to_thread(prometheus.query, promql)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


async def wait_for_value(prometheus: Any, promql: str, expected: float) -> None:
    """Poll until `promql` equals `expected` (scrapes lag behind the process)."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    value = None
    while time.monotonic() < deadline:
        value = await query(prometheus, promql)
        if value == expected:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{promql} is {value} after {SCRAPE_TIMEOUT} s, expected {expected}")


async def test_failure_ratio_is_exactly_the_planted_one(
    start_api: Any, prometheus: Any, s3: Any, bucket: str
) -> None:
    # given a scraped replica on the legacy path
    replica, job = await scraped_replica(start_api, prometheus, s3, bucket)
    sel = f'job="{job}",{LEGACY}'
    # when 14 documents that exist and 6 that do not are ingested
    present = [f"ok-{i}" for i in range(14)]
    missing = [f"gone-{i}" for i in range(6)]
    put_text_documents(s3, bucket, present)
    await ingest_all(replica, present + missing)
    await replica.service.drain()
    await wait_for_value(prometheus, f"sum(ingestion_documents_total{{{sel}}})", 20)
    # then the operator's failure ratio is exactly 6/20, and the errors are named
    ratio = (
        f'sum(ingestion_documents_total{{{sel},outcome="failure"}})'
        f" / sum(ingestion_documents_total{{{sel}}})"
    )
    assert await query(prometheus, ratio) == 0.3
    not_found = f'ingestion_errors_total{{{sel},error_type="DocumentNotFoundError"}}'
    assert await query(prometheus, f"sum({not_found})") == 6
    assert await query(prometheus, f"sum(ingestion_errors_total{{{sel}}})") == 6
    # and the rollout percentage is exported
    assert await query(prometheus, f'ingestion_rollout_percentage{{job="{job}"}}') == 0


async def test_latency_quantiles_show_the_planted_slow_documents(
    start_api: Any, prometheus: Any, s3: Any, bucket: str
) -> None:
    # given a scraped replica on the legacy path, where "slow-" documents take 2 s more
    replica, job = await scraped_replica(start_api, prometheus, s3, bucket, slow=True)
    sel = f'job="{job}",{LEGACY}'
    # when 40 fast and 2 slow documents (5 %) are ingested
    fast = [f"fast-{i}" for i in range(40)]
    slow = ["slow-1", "slow-2"]
    put_text_documents(s3, bucket, fast + slow)
    await ingest_all(replica, fast)
    await ingest_all(replica, slow)
    await replica.service.drain()
    await wait_for_value(prometheus, f"sum(ingestion_duration_seconds_count{{{sel}}})", 42)
    # then the slow ones, and only they, lie above 2 s
    buckets = f"sum by (le) (ingestion_duration_seconds_bucket{{{sel}}})"
    below = 'sum(ingestion_duration_seconds_bucket{%s,le="%s"})'
    assert await query(prometheus, below % (sel, "2.0")) == 40
    assert await query(prometheus, below % (sel, "3.0")) == 42
    # and p99 falls in their bucket (2 .. 3 s) while p50 stays with the fast ones
    p99 = await query(prometheus, f"histogram_quantile(0.99, {buckets})")
    p50 = await query(prometheus, f"histogram_quantile(0.5, {buckets})")
    assert p99 is not None and 2.0 <= p99 <= 3.0, p99
    assert p50 is not None and p50 < 2.0, p50
    succeeded = f'sum(ingestion_documents_total{{{sel},outcome="success"}})'
    assert await query(prometheus, succeeded) == 42

"""PrometheusProvider + assess() against a real Prometheus scraping a known mix.

A private CollectorRegistry served by prometheus_client's own HTTP server stands in
for the router and the worker: it exports the contract metrics under their real
names, and the test plants 100 Temporal documents (8 failed), Temporal latency 0.3 s
against legacy 0.1 s, a backlog of 1500 and no DB connection errors. The default
queries must then measure exactly that, and assess() must fail the error rate and the
backlog, pass the DB errors, and judge the 3x latency ratio by its floor: 0.2 s slower
is within the default 0.5 s floor (a pass), and fails with a 0.1 s floor.

Two things make the numbers exact:
- increase()/rate() need a counter to *change* inside the window, so every series
  is exported at 0 first, the test waits until Prometheus has scraped the zeros a
  few times, and only then plants the values;
- the session's Prometheus is shared with other tests, so this module scrapes under
  a job name of its own and scopes the default queries to it (labels={"job": ...}).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from ingestion_operator.analysis import (
    AnalysisResult,
    Measurement,
    Thresholds,
    Verdict,
    assess,
)
from ingestion_operator.analysis.evidence import step_evidence
from ingestion_operator.analysis.sequential_judge import assess_sequential
from ingestion_operator.metricproviders import PrometheusProvider, make_provider
from ingestion_operator.metricproviders.prometheus_queries import default_queries
from ingestion_operator.spec import AnalysisSpec
from ingestion_sandbox.servers.common import free_port
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

SCRAPE_INTERVAL = "500ms"
WINDOW = "1m"  # the whole test fits in it: zeros, then the planted values
BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
TASK_QUEUE = "document-ingestion"
# scrapes of the zeros before planting: they stretch the sampled interval, which
# bounds how far increase() extrapolates (see the sampleCount assertion)
ZERO_SCRAPES = 8


@dataclass
class Scraped:
    job: str
    url: str  # Prometheus
    queries: dict[str, str]


def contract_registry() -> tuple[CollectorRegistry, dict[str, Any]]:
    """The metric contract, every series created at 0 (except the DB-error counter)."""
    registry = CollectorRegistry()
    documents = Counter("ingestion_documents_total", "docs", ["path", "outcome"], registry=registry)
    duration = Histogram(
        "ingestion_duration_seconds", "time", ["path"], buckets=BUCKETS, registry=registry
    )
    backlog = Gauge("temporal_task_queue_backlog", "backlog", ["task_queue"], registry=registry)
    db_errors = Counter(
        "ingestion_db_connection_errors_total", "db", ["database"], registry=registry
    )
    for path in ("temporal", "legacy"):
        duration.labels(path=path)
        for outcome in ("success", "failure"):
            documents.labels(path=path, outcome=outcome)
    backlog.labels(task_queue=TASK_QUEUE).set(0)
    metrics = {"documents": documents, "duration": duration, "backlog": backlog, "db": db_errors}
    return registry, metrics


def plant(metrics: dict[str, Any]) -> None:
    """100 Temporal documents (8 failed) at 0.3 s; 100 legacy at 0.1 s; backlog 1500."""
    documents, duration = metrics["documents"], metrics["duration"]
    documents.labels(path="temporal", outcome="success").inc(92)
    documents.labels(path="temporal", outcome="failure").inc(8)
    documents.labels(path="legacy", outcome="success").inc(100)
    for _ in range(100):
        duration.labels(path="temporal").observe(0.3)
        duration.labels(path="legacy").observe(0.1)
    metrics["backlog"].labels(task_queue=TASK_QUEUE).set(1500)


@pytest.fixture(scope="module")
def scraped(prometheus: Any) -> Iterator[Scraped]:
    """The planted mix, scraped: yields once Prometheus holds the final values."""
    registry, metrics = contract_registry()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    job = f"analysis-{uuid.uuid4().hex[:8]}"
    try:
        prometheus.set_targets(
            {job: [f"127.0.0.1:{server.server_port}"]}, scrape_interval=SCRAPE_INTERVAL
        )
        scope = f'job="{job}"'
        zeros = f'count_over_time(ingestion_duration_seconds_count{{{scope},path="legacy"}}[1m])'
        prometheus.wait_for_series(f"{zeros} >= {ZERO_SCRAPES}")
        plant(metrics)
        prometheus.wait_for_series(f"sum(ingestion_documents_total{{{scope}}}) >= 200")
        prometheus.wait_for_series(f"sum(ingestion_duration_seconds_count{{{scope}}}) >= 200")
        prometheus.wait_for_series(f"temporal_task_queue_backlog{{{scope}}} == 1500")
        queries = default_queries(WINDOW, 0.99, TASK_QUEUE, labels={"job": job})
        yield Scraped(job, prometheus.url, queries)
    finally:
        prometheus.set_targets({})
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def measured(scraped: Scraped) -> dict[str, Measurement]:
    return PrometheusProvider(scraped.url).measure(scraped.queries)


@pytest.fixture(scope="module")
def analysis(measured: dict[str, Measurement]) -> AnalysisResult:
    return assess(measured, Thresholds(), min_sample_count=50, at=datetime.now(UTC))


def test_the_default_queries_measure_the_planted_mix(measured: dict[str, Measurement]) -> None:
    assert all(m.error is None for m in measured.values()), measured
    # increase() extrapolates to the window's end (up to 1.1 scrape intervals past the
    # last sample, relative to the ~3.5 s sampled): 100 documents read as 100..~116.
    # Both sides of a ratio are extrapolated alike, so the ratios are exact.
    count = measured["sampleCount"].value
    assert count is not None and 100 <= count <= 125
    assert measured["errorRate"].value == pytest.approx(0.08, rel=0.01)
    # histogram_quantile interpolates in the bucket: 0.299 / 0.0995
    assert measured["latencyRatio"].value == pytest.approx(3.0, rel=0.02)
    assert measured["latencyDeltaSeconds"].value == pytest.approx(0.2, rel=0.02)
    assert measured["queueDepth"].value == 1500
    assert measured["dbConnectionErrorsPerMinute"].value == 0  # no series: `or vector(0)`


def test_assess_fails_the_breached_rules_and_passes_the_healthy_one(
    analysis: AnalysisResult,
) -> None:
    verdicts = {m.name: m.verdict for m in analysis.metrics}
    assert verdicts == {
        "errorRate": Verdict.FAIL,
        "latencyRatio": Verdict.PASS,  # 3x, but only 0.2 s slower: within the 0.5 s floor
        "queueDepth": Verdict.FAIL,
        "dbConnectionErrorsPerMinute": Verdict.PASS,
    }
    assert analysis.verdict == Verdict.FAIL
    failing = analysis.failing_metric()
    assert failing is not None and failing.message.startswith("errorRate 0.08")
    assert failing.message.endswith("> 0.05")
    latency = next(m for m in analysis.metrics if m.name == "latencyRatio")
    assert latency.message.startswith("latencyRatio 3")
    assert "but only p99 +0.2" in latency.message and "<= 0.5s" in latency.message


def test_a_lower_latency_floor_fails_the_same_slowdown(measured: dict[str, Measurement]) -> None:
    thresholds = Thresholds.from_spec({"minLatencyDeltaSeconds": 0.1})
    result = assess(measured, thresholds, min_sample_count=50, at=datetime.now(UTC))
    latency = next(m for m in result.metrics if m.name == "latencyRatio")
    assert latency.verdict == Verdict.FAIL
    assert (
        "and p99 +0.2" in latency.message and "> 0.1s (minLatencyDeltaSeconds)" in latency.message
    )


def test_result_shapes_other_than_one_series(scraped: Scraped) -> None:
    provider = make_provider("prometheus", url=scraped.url)
    measured = provider.measure(
        {
            "scalar": "scalar(vector(2))",
            "empty": f'ingestion_documents_total{{job="{scraped.job}",path="nowhere"}}',
            "many": f'ingestion_documents_total{{job="{scraped.job}"}}',
            "nan": "vector(0) / vector(0)",
        }
    )
    assert measured["scalar"] == Measurement(2.0)
    assert measured["empty"] == Measurement(None)
    many = measured["many"].error
    assert many is not None and "4 series" in many and "aggregate" in many
    nan = measured["nan"].value
    assert nan is not None and nan != nan


def test_a_promql_syntax_error_comes_back_as_an_error_with_prometheus_message(
    scraped: Scraped,
) -> None:
    measured = PrometheusProvider(scraped.url).measure(
        {"errorRate": "sum(rate(ingestion_documents_total[1m]", "queueDepth": "vector(1)"}
    )
    error = measured["errorRate"].error
    assert error is not None
    assert "parse error" in error and "HTTP 400" in error and scraped.url in error
    assert measured["queueDepth"] == Measurement(1.0)  # one bad query spoils no other
    result = assess(measured, Thresholds(), 0, datetime.now(UTC))
    assert next(m for m in result.metrics if m.name == "errorRate").verdict == Verdict.ERROR


def test_an_unreachable_prometheus_gives_errors_not_exceptions() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    provider = PrometheusProvider(url, timeout=2.0)
    measured = provider.measure(default_queries("2m", 0.99))
    assert set(measured) == {
        "sampleCount",
        "errorRate",
        "latencyRatio",
        "queueDepth",
        "dbConnectionErrorsPerMinute",
        "latencyDeltaSeconds",
    }
    for measurement in measured.values():
        assert measurement.value is None
        assert measurement.error == f"Prometheus at {url} unreachable: Connection refused"
    result = assess(measured, Thresholds(), 50, datetime.now(UTC))
    assert result.verdict == Verdict.ERROR
    assert all(m.verdict == Verdict.ERROR for m in result.metrics)
    assert url in result.metrics[0].message


def test_one_batched_request_measures_what_one_request_per_query_measures(
    scraped: Scraped,
) -> None:
    # given the default queries, asked in one request and then one request each
    batched = PrometheusProvider(scraped.url).measure(scraped.queries)
    single = PrometheusProvider(scraped.url, batch=False).measure(scraped.queries)
    # then every rule gets the same number either way
    assert set(batched) == set(single) == set(scraped.queries)
    for name in ("errorRate", "latencyRatio", "queueDepth", "dbConnectionErrorsPerMinute"):
        assert batched[name].error is None and single[name].error is None
        assert batched[name].value == pytest.approx(single[name].value, rel=0.01), name
    # sampleCount is an extrapolated increase(), which moves a little between requests
    assert batched["sampleCount"].value == pytest.approx(single["sampleCount"].value, rel=0.2)


def test_the_evidence_queries_count_the_planted_mix_as_whole_numbers(scraped: Scraped) -> None:
    # given the planted mix, counted over the last minute as a sequential judge's step would
    provider = PrometheusProvider(scraped.url)
    spec = AnalysisSpec(metric_labels={"job": scraped.job})
    measured = provider.measure(provider.evidence_queries(spec, 60))
    # then each count is whole, extrapolated at most as far as sampleCount is (see above)
    found = step_evidence(measured)
    assert 100 <= found.documents <= 125 and 8 <= found.failures <= 10
    assert found.le == (*BUCKETS, math.inf)
    at = {le: count for le, count in zip(found.le, found.temporal, strict=True)}
    assert at[0.2] == 0 and at[0.3] == at[math.inf] == found.documents  # all at 0.3 s
    legacy = dict(zip(found.le, found.legacy, strict=True))
    assert legacy[0.05] == 0 and 100 <= legacy[0.1] == legacy[math.inf] <= 125
    # and the sequential judge explains its verdicts from them
    result = assess_sequential(
        {**measured, **scraped_rules(scraped)}, Thresholds(), 0.01, datetime.now(UTC)
    )
    rate = next(m for m in result.metrics if m.name == "errorRate")
    assert rate.evidence is not None and rate.evidence.documents == found.documents
    assert (
        rate.message.startswith("error rate 0.0")
        and f"after {found.documents} documents" in rate.message
    )


def scraped_rules(scraped: Scraped) -> dict[str, Measurement]:
    return PrometheusProvider(scraped.url).measure(scraped.queries)

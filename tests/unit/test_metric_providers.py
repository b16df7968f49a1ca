"""Provider selection, query overrides and result translation: the parts of metric
fetching that need no server (the Prometheus round trips are integration tests)."""

from __future__ import annotations

import math

import pytest
from ingestion_operator.analysis import Measurement
from ingestion_operator.metricproviders import PrometheusProvider, make_provider
from ingestion_operator.metricproviders.prometheus import batched, split_batch, to_measurement
from ingestion_operator.metricproviders.prometheus_queries import default_queries, resolve_queries
from ingestion_operator.spec import AnalysisSpec


def test_make_provider_builds_a_registered_kind() -> None:
    provider = make_provider("prometheus", url="http://prometheus:9090/", timeout=2.0)
    assert isinstance(provider, PrometheusProvider)
    assert provider.url == "http://prometheus:9090"
    assert provider.timeout == 2.0


def test_make_provider_rejects_an_unknown_kind_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown metric provider 'datadog'; known: prometheus"):
        make_provider("datadog", url="http://x")


def test_resolve_queries_applies_overrides() -> None:
    defaults = default_queries("2m", 0.99)
    resolved = resolve_queries(defaults, {"queueDepth": "max(my_backlog)"})
    assert resolved["queueDepth"] == "max(my_backlog)"
    assert resolved["errorRate"] == defaults["errorRate"]
    assert defaults["queueDepth"] == "max(temporal_task_queue_backlog)"  # not mutated


def test_resolve_queries_rejects_unknown_and_empty_overrides() -> None:
    defaults = default_queries("2m", 0.99)
    with pytest.raises(ValueError, match=r"unknown query overrides \['errorRatio'\]"):
        resolve_queries(defaults, {"errorRatio": "vector(1)"})
    with pytest.raises(ValueError, match="empty"):
        resolve_queries(defaults, {"errorRate": "  "})


def test_default_queries_follow_the_metric_contract() -> None:
    queries = default_queries(
        "5m", 0.95, "document-ingestion", labels={"namespace": 'a"b'}, counter_window="3m"
    )
    assert set(queries) == {
        "sampleCount",
        "errorRate",
        "latencyRatio",
        "queueDepth",
        "dbConnectionErrorsPerMinute",
        "latencyDeltaSeconds",
    }
    assert queries["sampleCount"] == (
        'sum(increase(ingestion_documents_total{namespace="a\\"b",path="temporal"}[5m]))'
    )
    assert "histogram_quantile(0.95, sum by (le)" in queries["latencyRatio"]
    assert 'task_queue="document-ingestion"' in queries["queueDepth"]
    assert queries["dbConnectionErrorsPerMinute"].endswith("* 60 or vector(0)")
    assert "[3m]" in queries["dbConnectionErrorsPerMinute"]  # the counter window, not 5m
    assert queries["latencyDeltaSeconds"] == queries["latencyRatio"].replace(") / ", ") - ")
    assert "or vector(0)) / sum(" in queries["errorRate"]  # no failure series yet means 0


@pytest.mark.parametrize("window", ["", "2", "2 m", "two minutes", "2m;drop"])
def test_default_queries_reject_bad_windows(window: str) -> None:
    with pytest.raises(ValueError, match="window"):
        default_queries(window, 0.99)


def test_default_queries_reject_bad_quantiles() -> None:
    with pytest.raises(ValueError, match="quantile"):
        default_queries("2m", 99)


def test_to_measurement_translates_each_result_shape() -> None:
    assert to_measurement([]) == Measurement(None)
    assert to_measurement([1.7e9, "2"]) == Measurement(2.0)  # a scalar
    assert to_measurement([{"metric": {}, "value": [1.7e9, "0.08"]}]) == Measurement(0.08)
    nan = to_measurement([{"metric": {}, "value": [1.7e9, "NaN"]}]).value
    assert nan is not None and math.isnan(nan)
    two = [{"metric": {"job": "a"}, "value": [0, "1"]}, {"metric": {"job": "b"}, "value": [0, "1"]}]
    error = to_measurement(two).error
    assert error is not None and "2 series" in error and "aggregate" in error
    ranged = to_measurement([{"metric": {}, "values": [[0, "1"]]}]).error
    assert ranged is not None and "range vector" in ranged
    assert to_measurement({"weird": True}).error is not None


def test_a_batch_tags_each_query_with_its_rule() -> None:
    expression = batched({"a": "sum(x)", "b": "vector(1)"})
    assert expression == (
        'label_replace((sum(x)), "ingestion_rule", "a", "", "")'
        ' or label_replace((vector(1)), "ingestion_rule", "b", "", "")'
    )


def test_a_batched_answer_splits_back_per_rule() -> None:
    # given an answer with one series for a, two for b and none for c
    result = [
        {"metric": {"ingestion_rule": "a"}, "value": [1.0, "0.5"]},
        {"metric": {"ingestion_rule": "b", "pod": "p1"}, "value": [1.0, "1"]},
        {"metric": {"ingestion_rule": "b", "pod": "p2"}, "value": [1.0, "2"]},
    ]
    # when split
    measured = split_batch(result, {"a": "qa", "b": "qb", "c": "qc"})
    # then each rule is judged on its own series, as if asked alone
    assert measured["a"] == Measurement(0.5)
    many = measured["b"].error
    assert many is not None and "2 series" in many and "pod='p1'" in many
    assert measured["c"] == Measurement(None)


def test_evidence_queries_count_since_the_step_began_with_the_spec_labels() -> None:
    analysis = AnalysisSpec(metric_labels={"job": "ingestion"})
    queries = PrometheusProvider("http://p").evidence_queries(analysis, 754)
    assert queries == {
        "temporalDocuments": (
            'sum(increase(ingestion_documents_total{job="ingestion",path="temporal"}[754s]))'
        ),
        "temporalFailures": (
            "sum(increase(ingestion_documents_total"
            '{job="ingestion",path="temporal",outcome="failure"}[754s]))'
        ),
        "temporalLatencyBuckets": (
            "sum by (le) (increase(ingestion_duration_seconds_bucket"
            '{job="ingestion",path="temporal"}[754s]))'
        ),
        "legacyLatencyBuckets": (
            "sum by (le) (increase(ingestion_duration_seconds_bucket"
            '{job="ingestion",path="legacy"}[754s]))'
        ),
    }
    assert (
        "[1s]" in PrometheusProvider("http://p").evidence_queries(analysis, 0)["temporalDocuments"]
    )


def test_a_histogram_answer_becomes_buckets_and_other_names_still_need_one_series() -> None:
    series = [
        {"metric": {"le": "+Inf"}, "value": [1, "41.7"]},
        {"metric": {"le": "0.1"}, "value": [1, "40.2"]},
        {"metric": {"le": "0.05"}, "value": [1, "3"]},
    ]
    assert to_measurement(series, histogram=True) == Measurement(
        buckets=((0.05, 3.0), (0.1, 40.2), (math.inf, 41.7))
    )
    assert "3 series" in (to_measurement(series).error or "")
    tagged = [
        {**s, "metric": {**s["metric"], "ingestion_rule": "legacyLatencyBuckets"}} for s in series
    ]
    split = split_batch(tagged, {"legacyLatencyBuckets": "q", "temporalDocuments": "q2"})
    assert split["legacyLatencyBuckets"].buckets == ((0.05, 3.0), (0.1, 40.2), (math.inf, 41.7))
    assert split["temporalDocuments"] == Measurement(None)

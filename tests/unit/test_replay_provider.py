"""The provider's seam for a replay (metricproviders/prometheus_range.py and the range
methods of PrometheusProvider): how a long grid is split into requests Prometheus accepts,
how a range answer maps onto the instant answers the live analysis reads, how raw samples
read in chunks are merged, and the evidence selectors the live queries are built from.
(The round trips against a real Prometheus: tests/integration/whatif/.)"""

from __future__ import annotations

import builtins
import math
from pathlib import Path
from typing import Any

import pytest
from ingestion_operator.analysis import Measurement
from ingestion_operator.metricproviders.prometheus import to_measurement
from ingestion_operator.metricproviders.prometheus_queries import (
    evidence_queries,
    evidence_selectors,
)
from ingestion_operator.metricproviders.prometheus_range import (
    MAX_RANGE_POINTS,
    RawSeries,
    at_instants,
    chunks,
    merge_raw,
    windows,
)
from ingestion_operator.replay.chart import pyplot, render
from ingestion_operator.replay.engine import Replay
from ingestion_operator.replay.errors import ReplayError
from ingestion_operator.replay.inputs import rollout_spec
from ingestion_operator.spec import AnalysisSpec


def test_a_week_at_30s_is_two_range_requests_each_under_prometheus_limit() -> None:
    # given a week of instants every 30 s (20,161 of them)
    week = list(windows(0, 7 * 86400, 30))
    # then they are split into requests of at most 11,000 points, none lost or repeated
    assert len(week) == 2
    assert all(len(w) <= MAX_RANGE_POINTS for w in week)
    assert [t for w in week for t in w] == list(range(0, 7 * 86400 + 1, 30))
    with pytest.raises(ValueError, match="no instants"):
        list(windows(10, 0, 30))


def test_raw_chunks_cover_the_range_end_to_end() -> None:
    assert list(chunks(0, 200_000, 86_400)) == [(0, 86_400), (86_400, 172_800), (172_800, 200_000)]


def test_a_range_answer_reads_as_the_instant_answers_at_each_instant() -> None:
    # given a range answer: one series with a point at 0 and 60, none at 30
    one = [{"metric": {}, "values": [[0, "0.5"], [60, "NaN"]]}]
    # then each instant reads as the instant query would: a value, no data, a NaN
    read = at_instants(one, range(0, 61, 30), to_measurement)
    assert read[0] == Measurement(0.5) and read[1] == Measurement(None)
    assert read[2].value is not None and math.isnan(read[2].value)
    # and two series at one instant are the error the live analysis reports
    two = [
        {"metric": {"a": "1"}, "values": [[0, "1"]]},
        {"metric": {"a": "2"}, "values": [[0, "2"]]},
    ]
    assert "query returned 2 series" in str(at_instants(two, range(0, 1), to_measurement)[0].error)
    # and a histogram's series per bound become its buckets
    buckets = [
        {"metric": {"le": "0.1"}, "values": [[0, "3"]]},
        {"metric": {"le": "+Inf"}, "values": [[0, "4"]]},
    ]
    histogram = at_instants(buckets, range(0, 1), lambda v: to_measurement(v, histogram=True))
    assert histogram[0] == Measurement(buckets=((0.1, 3.0), (math.inf, 4.0)))
    assert at_instants("garbage", range(0, 31, 30), to_measurement)[1].error is not None


def test_raw_reads_merge_per_series_keeping_a_border_sample_once() -> None:
    first = [{"metric": {"le": "1"}, "values": [[0, "1"], [15, "2"]]}]
    second = [{"metric": {"le": "1"}, "values": [[15, "2"], [30, "3"]]}]
    assert merge_raw([first, second]) == (RawSeries({"le": "1"}, (0, 15_000, 30_000), (1, 2, 3)),)
    with pytest.raises(ValueError, match="malformed raw samples"):
        merge_raw([[{"metric": {}}]])


def test_evidence_queries_are_the_increase_of_the_evidence_selectors() -> None:
    analysis = AnalysisSpec(metric_labels={"job": "api"})
    selectors = evidence_selectors(analysis)
    assert selectors["temporalFailures"] == (
        'ingestion_documents_total{job="api",path="temporal",outcome="failure"}'
    )
    queries = evidence_queries(analysis, 90)
    for name, selector in selectors.items():
        assert f"(increase({selector}[90s]))" in queries[name]


def test_a_chart_without_matplotlib_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given an installation without matplotlib
    real_import = builtins.__import__

    def without_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_matplotlib)
    # then --chart stops with the command that installs it
    with pytest.raises(ReplayError, match=r"pip install 'apex-ingestion-rollout\[replay\]'"):
        pyplot()
    with pytest.raises(ReplayError, match="--chart needs matplotlib"):
        render(Replay(rollout_spec({}, "spec")), tmp_path / "c.png", "t")

"""increase() from raw samples (replay/promql.py): hand-computed cases of Prometheus's
extrapolation, counter resets and range edges under both versions' semantics, and a
property test against a direct transcription of Prometheus's extrapolatedRate. (The
integration tests in tests/integration/whatif/ compare it with a real Prometheus.)"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingestion_operator.analysis import Measurement
from ingestion_operator.metricproviders.prometheus_range import RawSeries
from ingestion_operator.replay.promql import (
    PROMETHEUS_2,
    PROMETHEUS_3,
    Counter,
    EvidenceCounters,
    Semantics,
    semantics_for,
)

S = 1000  # ms per second


def counter(*points: tuple[int, float]) -> Counter:
    """Samples given as (seconds, value)."""
    return Counter([t * S for t, _ in points], [v for _, v in points])


def transcribed(
    points: list[tuple[int, float]], start: int, end: int, semantics: Semantics
) -> float | None:
    """Prometheus's extrapolatedRate for a float counter, transcribed line by line from
    promql/functions.go (2.x before prometheus#13725, 3.x after), walking every sample."""
    inside = [
        (t, v) for t, v in points if (t > start if semantics.left_open else t >= start) and t <= end
    ]
    if len(inside) < 2:
        return None
    result = inside[-1][1] - inside[0][1]
    previous = inside[0][1]
    for _, value in inside[1:]:
        if value < previous:
            result += previous
        previous = value
    duration_to_start = (inside[0][0] - start) / 1000
    duration_to_end = (end - inside[-1][0]) / 1000
    sampled = (inside[-1][0] - inside[0][0]) / 1000
    average = sampled / (len(inside) - 1)
    threshold = average * 1.1
    if not semantics.threshold_first:
        if result > 0 and inside[0][1] >= 0:
            duration_to_zero = sampled * (inside[0][1] / result)
            if duration_to_zero < duration_to_start:
                duration_to_start = duration_to_zero
        interval = sampled
        interval += duration_to_start if duration_to_start < threshold else average / 2
        interval += duration_to_end if duration_to_end < threshold else average / 2
        return result * (interval / sampled)
    if duration_to_start >= threshold:
        duration_to_start = average / 2
    duration_to_zero = duration_to_start
    if result > 0 and inside[0][1] >= 0:
        duration_to_zero = sampled * (inside[0][1] / result)
    if duration_to_zero < duration_to_start:
        duration_to_start = duration_to_zero
    if duration_to_end >= threshold:
        duration_to_end = average / 2
    return result * ((sampled + duration_to_start + duration_to_end) / sampled)


@pytest.mark.parametrize("semantics", [PROMETHEUS_2, PROMETHEUS_3])
def test_steady_samples_are_extrapolated_to_the_range_edges(semantics: Semantics) -> None:
    # given 10 more every 15 s, the range's edges 15 s beyond the first and last samples
    steady = counter((15, 10), (30, 20), (45, 30))
    # when the increase over [0, 60] is taken / then 20 counted over 30 s reads as 40 over 60
    assert steady.increase(0, 60 * S, semantics) == 40


@pytest.mark.parametrize("semantics", [PROMETHEUS_2, PROMETHEUS_3])
def test_a_counter_reset_adds_the_value_before_the_drop(semantics: Semantics) -> None:
    # given a process restart between 30 s and 45 s (20 -> 5)
    restarted = counter((15, 10), (30, 20), (45, 5))
    # then the increase counts 10 before and 5 after, extrapolated x2: 30
    assert restarted.increase(0, 60 * S, semantics) == 30


def test_a_series_born_in_the_range_is_extrapolated_as_each_version_does() -> None:
    # given a series whose first sample lies 40 s after the range starts (10 s apart)
    born = counter((40, 6), (50, 16), (60, 26))
    # then Prometheus 2 stops at the extrapolated zero (6 s back): 20 x 26/20
    assert born.increase(0, 60 * S, PROMETHEUS_2) == pytest.approx(26)
    # and Prometheus 3 at half an interval first (5 s, nearer than the zero): 20 x 25/20
    assert born.increase(0, 60 * S, PROMETHEUS_3) == pytest.approx(25)


def test_a_sample_on_the_range_start_counts_only_in_prometheus_2() -> None:
    edge = counter((0, 0), (10, 10), (20, 20))
    # Prometheus 2's range is closed: 0..20 in [0, 20] is 20
    assert edge.increase(0, 20 * S, PROMETHEUS_2) == 20
    # Prometheus 3's is left-open: only 10 and 20, extrapolated back 10 s: 20
    assert edge.increase(0, 20 * S, PROMETHEUS_3) == 20
    assert edge.increase(5 * S, 20 * S, PROMETHEUS_3) == pytest.approx(15)
    assert edge.increase(10 * S, 20 * S, PROMETHEUS_3) is None  # one sample left: no value


def test_fewer_than_two_samples_give_no_value() -> None:
    assert counter((10, 5)).increase(0, 20 * S, PROMETHEUS_2) is None
    assert counter().increase(0, 20 * S, PROMETHEUS_3) is None


def test_versions_map_to_their_semantics() -> None:
    assert semantics_for("2.42.0+ds") == PROMETHEUS_2
    assert semantics_for("v2.53.1") == PROMETHEUS_2
    assert semantics_for("3.4.0") == PROMETHEUS_3
    assert semantics_for(None) == PROMETHEUS_3  # unknown: the current major


samples = st.lists(
    st.tuples(st.integers(1, 400), st.integers(0, 10_000)), min_size=0, max_size=40
).map(lambda ps: sorted({t * 250: v for t, v in ps}.items()))


@settings(max_examples=400, deadline=None)
@given(
    points=samples,
    start=st.integers(0, 100_000),
    length=st.integers(1, 100_000),
    semantics=st.sampled_from([PROMETHEUS_2, PROMETHEUS_3]),
)
def test_increase_matches_prometheus_transcribed(
    points: list[tuple[int, int]], start: int, length: int, semantics: Semantics
) -> None:
    # given any integer counter (with resets wherever a value drops) and any range
    series = Counter([t for t, _ in points], [float(v) for _, v in points])
    # when its increase is taken with the reset-folded shortcut
    got = series.increase(start, start + length, semantics)
    # then it is what Prometheus's own walk over the samples computes
    expected = transcribed([(t, float(v)) for t, v in points], start, start + length, semantics)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-9)


def raw(labels: dict[str, str], *points: tuple[int, float]) -> RawSeries:
    return RawSeries(labels, tuple(t * S for t, _ in points), tuple(v for _, v in points))


def test_evidence_sums_series_and_histograms_by_bound() -> None:
    # given two instances' documents and their latency buckets
    steady = ((0, 0.0), (10, 10.0), (20, 20.0))
    counters = EvidenceCounters(
        {
            "temporalDocuments": [raw({"instance": "a"}, *steady), raw({"instance": "b"}, *steady)],
            "temporalFailures": [],
            "temporalLatencyBuckets": [
                raw({"le": "0.1", "instance": "a"}, *steady),
                raw({"le": "0.1", "instance": "b"}, *steady),
                raw({"le": "+Inf", "instance": "a"}, *steady),
            ],
            "legacyLatencyBuckets": [raw({"le": "+Inf"}, (19, 3.0))],
        },
        PROMETHEUS_2,
    )
    # when measured at 20 s over the last 20 s
    measured = counters.measure(20 * S, 20)
    # then each query reads as sum(...) / sum by (le) (...) would
    assert measured["temporalDocuments"] == Measurement(40.0)
    assert measured["temporalFailures"] == Measurement(None)  # no series: no data
    assert measured["temporalLatencyBuckets"] == Measurement(
        buckets=((0.1, 40.0), (math.inf, 20.0))
    )
    assert measured["legacyLatencyBuckets"] == Measurement(None)  # one sample: no value

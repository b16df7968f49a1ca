"""Routing decisions and routing-data parsing: properties that must hold for every document id."""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingestion_api.routing import (
    RoutingConfig,
    RoutingConfigError,
    bucket_of,
    parse_routing_data,
    should_use_temporal,
)
from ingestion_api.routing_source import RoutingSource, StaticRoutingSource
from prometheus_client import REGISTRY

document_ids = st.text(max_size=200)
percentages = st.integers(min_value=0, max_value=100)
padding = st.sampled_from(["", " ", "  ", "\t", "\n", " \t "])


@given(document_ids)
def test_bucket_of_is_the_md5_hexdigest_formula(document_id: str) -> None:
    # given the documented formula, computed independently
    expected = int(hashlib.md5(document_id.encode("utf-8")).hexdigest(), 16) % 100
    # when / then
    assert bucket_of(document_id) == expected


@given(document_ids, percentages)
def test_decision_is_the_bucket_compared_with_the_percentage(document_id: str, p: int) -> None:
    # given a document and a percentage / when routed
    decision = should_use_temporal(document_id, p)
    # then it goes to Temporal exactly when its bucket is below the percentage
    assert decision is (bucket_of(document_id) < p)


@given(document_ids, percentages)
def test_same_document_always_takes_the_same_path(document_id: str, p: int) -> None:
    # given the same id, as a distinct string object (as a retried request would carry it)
    copy = "".join(list(document_id))
    # when routed twice / then both decisions agree
    assert should_use_temporal(document_id, p) == should_use_temporal(copy, p)


@given(document_ids, percentages, percentages)
def test_raising_the_percentage_never_moves_a_document_back(
    document_id: str, p: int, q: int
) -> None:
    # given p <= q
    low, high = sorted((p, q))
    # when the document is on Temporal at the lower percentage
    if should_use_temporal(document_id, low):
        # then it is still on Temporal at the higher one
        assert should_use_temporal(document_id, high)


@given(document_ids)
def test_zero_routes_nothing_and_hundred_routes_everything(document_id: str) -> None:
    # given any document / when routed at the two ends / then
    assert should_use_temporal(document_id, 0) is False
    assert should_use_temporal(document_id, 100) is True
    assert 0 <= bucket_of(document_id) <= 99


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from([10, 50]))
def test_share_routed_matches_the_percentage(seed: int, percentage: int) -> None:
    # given 10_000 random document ids (UUIDs, as the API issues them)
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(10_000)]
    # when routed at the percentage
    share = 100 * sum(should_use_temporal(i, percentage) for i in ids) / len(ids)
    # then the share is the percentage, within 2.5 points (>= 5 standard deviations)
    assert abs(share - percentage) <= 2.5


@given(st.integers(min_value=0, max_value=100), padding, padding)
def test_parse_accepts_integers_0_to_100_with_whitespace(
    value: int, before: str, after: str
) -> None:
    # given a valid percentage surrounded by whitespace
    data = {"percentage": f"{before}{value}{after}"}
    # when parsed / then the integer is taken and the optional knobs default
    assert parse_routing_data(data, "percentage") == RoutingConfig(percentage=value)


@given(st.integers().filter(lambda n: not 0 <= n <= 100))
def test_parse_rejects_integers_outside_0_to_100(value: int) -> None:
    # given an out-of-range integer / when parsed / then it is rejected as out of range
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing_data({"percentage": str(value)}, "percentage")
    assert caught.value.reason == "out_of_range"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("50.0", "not_an_integer"),
        ("1e2", "not_an_integer"),
        ("", "not_an_integer"),
        ("   ", "not_an_integer"),
        ("abc", "not_an_integer"),
        ("1_0", "not_an_integer"),
        ("-1", "out_of_range"),
        ("101", "out_of_range"),
        ("150", "out_of_range"),
    ],
)
def test_parse_rejects_malformed_percentages(raw: str, reason: str) -> None:
    # given a malformed percentage / when parsed
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing_data({"percentage": raw}, "percentage")
    # then the reason says why and the message quotes the value
    assert caught.value.reason == reason
    assert repr(raw) in str(caught.value)


def test_parse_rejects_a_missing_key() -> None:
    # given data without the configured key / when parsed / then
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing_data({"other": "50"}, "percentage")
    assert caught.value.reason == "missing_key"


def test_parse_reads_the_optional_knobs() -> None:
    # given all three keys / when parsed / then each is taken
    data = {"percentage": "25", "parallel": " True ", "shadowSampleRate": "0.25"}
    config = parse_routing_data(data, "percentage")
    assert config == RoutingConfig(percentage=25, parallel=True, shadow_sample_rate=0.25)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"parallel": "yes"}, "invalid_parallel"),
        ({"parallel": "1"}, "invalid_parallel"),
        ({"parallel": ""}, "invalid_parallel"),
        ({"shadowSampleRate": "1.5"}, "invalid_shadow_sample_rate"),
        ({"shadowSampleRate": "-0.1"}, "invalid_shadow_sample_rate"),
        ({"shadowSampleRate": "nan"}, "invalid_shadow_sample_rate"),
        ({"shadowSampleRate": "half"}, "invalid_shadow_sample_rate"),
    ],
)
def test_parse_rejects_malformed_optional_knobs(extra: dict[str, str], reason: str) -> None:
    # given a valid percentage but a malformed optional key / when parsed / then rejected
    with pytest.raises(RoutingConfigError) as caught:
        parse_routing_data({"percentage": "10", **extra}, "percentage")
    assert caught.value.reason == reason


@given(st.floats(min_value=0.0, max_value=1.0))
def test_parse_accepts_any_sample_rate_in_0_to_1(rate: float) -> None:
    # given a sample rate in range, written as Python writes it / when parsed / then kept
    config = parse_routing_data({"p": "0", "shadowSampleRate": repr(rate)}, "p")
    assert config.shadow_sample_rate == rate


async def test_static_source_is_always_ready_with_its_config() -> None:
    # given a static source (local runs without a cluster), typed as the API sees it
    config = RoutingConfig(percentage=12, parallel=True, shadow_sample_rate=0.5)
    source: RoutingSource = StaticRoutingSource(config)
    # when started / then it is ready, serves its config and publishes it on the gauge
    await source.start()
    assert source.ready
    assert source.current is config
    assert REGISTRY.get_sample_value("ingestion_rollout_percentage") == 12
    assert "12" in source.describe()
    await source.stop()

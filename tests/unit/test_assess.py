"""assess(): every threshold boundary, the honest non-answers (too few samples, no
data, NaN, failed queries), the overall-verdict precedence, messages and status form.

Boundaries are strict: a value equal to its limit passes, anything above fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from ingestion_operator.analysis import (
    AnalysisResult,
    Measurement,
    MetricResult,
    Thresholds,
    Verdict,
    assess,
    overall,
)

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
MIN_SAMPLES = 50
HEALTHY = {
    "sampleCount": Measurement(200.0),
    "errorRate": Measurement(0.01),
    "latencyRatio": Measurement(1.2),
    "queueDepth": Measurement(10.0),
    "dbConnectionErrorsPerMinute": Measurement(0.0),
}


def run(
    changes: Mapping[str, Measurement] | None = None, min_samples: int = MIN_SAMPLES
) -> AnalysisResult:
    measurements = {**HEALTHY, **(changes or {})}
    return assess(measurements, Thresholds(), min_samples, AT)


def metric(result: AnalysisResult, name: str) -> MetricResult:
    return next(m for m in result.metrics if m.name == name)


def test_healthy_measurements_pass_every_rule() -> None:
    result = run()
    assert result.verdict == Verdict.PASS
    assert [m.name for m in result.metrics] == [
        "errorRate",
        "latencyRatio",
        "queueDepth",
        "dbConnectionErrorsPerMinute",
    ]
    assert all(m.verdict == Verdict.PASS for m in result.metrics)
    assert result.sample_count == 200.0
    assert result.failing_metric() is None


@pytest.mark.parametrize(
    ("name", "value", "verdict"),
    [
        ("errorRate", 0.05, Verdict.PASS),
        ("errorRate", 0.051, Verdict.FAIL),
        ("errorRate", 0.0, Verdict.PASS),
        ("latencyRatio", 2.0, Verdict.PASS),
        ("latencyRatio", 2.01, Verdict.FAIL),
        ("latencyRatio", math.inf, Verdict.FAIL),
        ("queueDepth", 1000.0, Verdict.PASS),
        ("queueDepth", 1001.0, Verdict.FAIL),
        ("dbConnectionErrorsPerMinute", 10.0, Verdict.PASS),
        ("dbConnectionErrorsPerMinute", 11.0, Verdict.FAIL),
    ],
)
def test_boundaries_are_strictly_greater_than(name: str, value: float, verdict: Verdict) -> None:
    result = run({name: Measurement(value)})
    assert metric(result, name).verdict == verdict
    assert result.verdict == verdict
    others = [m for m in result.metrics if m.name != name]
    assert all(m.verdict == Verdict.PASS for m in others)


def test_thresholds_from_the_spec_move_the_boundaries() -> None:
    thresholds = Thresholds.from_spec({"maxErrorRate": 0.1, "maxQueueDepth": 5})
    assert thresholds == Thresholds(
        {**Thresholds().values, "maxErrorRate": 0.1, "maxQueueDepth": 5}
    )
    measurements = {**HEALTHY, "errorRate": Measurement(0.08), "queueDepth": Measurement(6)}
    result = assess(measurements, thresholds, MIN_SAMPLES, AT)
    assert metric(result, "errorRate").verdict == Verdict.PASS
    assert metric(result, "queueDepth").verdict == Verdict.FAIL


def test_thresholds_from_the_spec_reject_unknown_keys_and_bad_values() -> None:
    assert Thresholds.from_spec(None) == Thresholds()
    assert Thresholds.from_spec({"latencyQuantile": 0.95})["latencyQuantile"] == 0.95
    with pytest.raises(ValueError, match="maxErrorRatio"):
        Thresholds.from_spec({"maxErrorRatio": 0.1})
    with pytest.raises(ValueError, match="numbers"):
        Thresholds.from_spec({"maxErrorRate": "lots"})
    with pytest.raises(ValueError, match="latencyQuantile"):
        Thresholds.from_spec({"latencyQuantile": 1.5})
    with pytest.raises(ValueError, match=">= 0"):
        Thresholds.from_spec({"maxQueueDepth": -1})


@pytest.mark.parametrize("name", ["errorRate", "latencyRatio"])
def test_rates_over_too_few_samples_are_inconclusive_even_when_bad(name: str) -> None:
    result = run(
        {"sampleCount": Measurement(12.0), name: Measurement(0.9 if name == "errorRate" else 9)}
    )
    judged = metric(result, name)
    assert judged.verdict == Verdict.INCONCLUSIVE
    assert "12 of 50 samples" in judged.message
    assert result.verdict == Verdict.INCONCLUSIVE


def test_the_sample_gate_is_inclusive_and_spares_the_non_rate_rules() -> None:
    exactly = run({"sampleCount": Measurement(50.0)})
    assert exactly.verdict == Verdict.PASS
    few = run({"sampleCount": Measurement(3.0), "queueDepth": Measurement(5000.0)})
    assert metric(few, "queueDepth").verdict == Verdict.FAIL
    assert metric(few, "dbConnectionErrorsPerMinute").verdict == Verdict.PASS
    assert few.verdict == Verdict.FAIL


def test_no_temporal_traffic_at_all_is_zero_samples() -> None:
    result = run({"sampleCount": Measurement(None), "errorRate": Measurement(None)})
    assert "0 of 50 samples" in metric(result, "errorRate").message
    assert result.sample_count is None
    assert result.verdict == Verdict.INCONCLUSIVE


def test_a_measurement_that_brings_its_own_samples_is_gated_on_them() -> None:
    result = run({"errorRate": Measurement(0.01, samples=7.0)})
    assert "7 of 50 samples" in metric(result, "errorRate").message
    assert metric(result, "latencyRatio").verdict == Verdict.PASS


def test_min_sample_count_zero_disables_the_gate() -> None:
    result = run({"sampleCount": Measurement(None)}, min_samples=0)
    assert result.verdict == Verdict.PASS


@pytest.mark.parametrize(
    "name", ["errorRate", "latencyRatio", "queueDepth", "dbConnectionErrorsPerMinute"]
)
def test_no_data_is_inconclusive_never_a_pass(name: str) -> None:
    result = run({name: Measurement(None)})
    judged = metric(result, name)
    assert judged.verdict == Verdict.INCONCLUSIVE
    assert judged.message == f"{name}: no data"
    assert judged.value is None
    assert result.verdict == Verdict.INCONCLUSIVE


@pytest.mark.parametrize("name", ["errorRate", "latencyRatio", "queueDepth"])
def test_nan_is_inconclusive(name: str) -> None:
    result = run({name: Measurement(math.nan)})
    judged = metric(result, name)
    assert judged.verdict == Verdict.INCONCLUSIVE
    assert "NaN" in judged.message


def test_a_failed_query_is_an_error_with_its_message() -> None:
    result = run({"queueDepth": Measurement(error="Prometheus at http://p:9090 unreachable")})
    judged = metric(result, "queueDepth")
    assert judged.verdict == Verdict.ERROR
    assert "unreachable" in judged.message
    assert judged.message.startswith("queueDepth")
    assert result.verdict == Verdict.ERROR


def test_a_failed_sample_count_query_is_an_error_for_the_rate_rules() -> None:
    result = run({"sampleCount": Measurement(error="timeout")})
    assert metric(result, "errorRate").verdict == Verdict.ERROR
    assert "sampleCount query failed: timeout" in metric(result, "latencyRatio").message
    assert metric(result, "queueDepth").verdict == Verdict.PASS


def test_a_missing_measurement_is_an_error() -> None:
    measurements = {k: v for k, v in HEALTHY.items() if k != "queueDepth"}
    result = assess(measurements, Thresholds(), MIN_SAMPLES, AT)
    assert metric(result, "queueDepth").verdict == Verdict.ERROR
    assert assess({}, Thresholds(), MIN_SAMPLES, AT).verdict == Verdict.ERROR


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({"errorRate": Measurement(0.5), "queueDepth": Measurement(error="down")}, Verdict.FAIL),
        ({"errorRate": Measurement(0.5), "queueDepth": Measurement(None)}, Verdict.FAIL),
        ({"queueDepth": Measurement(error="down"), "errorRate": Measurement(None)}, Verdict.ERROR),
        ({"latencyRatio": Measurement(math.nan)}, Verdict.INCONCLUSIVE),
        ({}, Verdict.PASS),
    ],
)
def test_overall_verdict_precedence(changes: dict[str, Measurement], verdict: Verdict) -> None:
    assert run(changes).verdict == verdict


def test_overall_of_nothing_is_inconclusive() -> None:
    assert overall([]) == Verdict.INCONCLUSIVE
    assert overall([Verdict.PASS, Verdict.ERROR, Verdict.INCONCLUSIVE]) == Verdict.ERROR


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("errorRate", 0.082, "errorRate 0.082 > 0.05"),
        ("errorRate", 0.02, "errorRate 0.02 <= 0.05"),
        ("latencyRatio", 3.005, "latencyRatio 3.005 > 2"),
        ("queueDepth", 1500.0, "queueDepth 1500 > 1000"),
        ("dbConnectionErrorsPerMinute", 0.0, "dbConnectionErrorsPerMinute 0 <= 10"),
    ],
)
def test_messages_name_the_metric_value_and_threshold(
    name: str, value: float, message: str
) -> None:
    assert metric(run({name: Measurement(value)}), name).message == message


def test_failing_metric_is_the_first_fail() -> None:
    result = run({"latencyRatio": Measurement(5.0), "queueDepth": Measurement(2000.0)})
    failing = result.failing_metric()
    assert failing is not None
    assert failing.name == "latencyRatio"
    assert failing.threshold == 2.0


def test_to_status_is_camel_case_json_safe() -> None:
    result = run({"errorRate": Measurement(0.082), "latencyRatio": Measurement(math.nan)})
    status = result.to_status()
    assert status["at"] == "2025-01-02T03:04:05+00:00"
    assert status["verdict"] == "Fail"
    assert status["metrics"][0] == {
        "name": "errorRate",
        "value": 0.082,
        "threshold": 0.05,
        "verdict": "Fail",
        "message": "errorRate 0.082 > 0.05",
    }
    assert status["metrics"][1]["value"] is None  # NaN is not JSON
    assert status["metrics"][1]["verdict"] == "Inconclusive"
    assert set(status) == {"at", "verdict", "metrics"}
    json.dumps(status, allow_nan=False)  # the API server would reject NaN/Infinity


def test_verdicts_are_their_status_strings() -> None:
    assert [str(v) for v in Verdict] == ["Pass", "Fail", "Inconclusive", "Error"]

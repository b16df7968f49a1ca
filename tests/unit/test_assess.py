"""assess(): every threshold boundary, the honest non-answers (too few samples, no
data, NaN, failed queries), the overall-verdict precedence, the latency floor, optional
rules, messages and status form.

Boundaries are strict: a value equal to its limit passes, anything above fails.
"""

from __future__ import annotations

import json
import math
import re
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
    preflight,
)
from ingestion_operator.analysis.evidence import EvidenceError, step_evidence
from ingestion_operator.analysis.sequential_judge import assess_sequential

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
MIN_SAMPLES = 50
HEALTHY = {
    "sampleCount": Measurement(200.0),
    "errorRate": Measurement(0.01),
    "latencyRatio": Measurement(1.2),
    "queueDepth": Measurement(10.0),
    "dbConnectionErrorsPerMinute": Measurement(0.0),
    "latencyDeltaSeconds": Measurement(0.75),  # above the 0.5 s floor: the ratio decides
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
        (
            "latencyRatio",
            3.5,
            "latencyRatio 3.5 > 2 and p99 +0.75s > 0.5s (minLatencyDeltaSeconds)",
        ),
        ("errorRate", 0.0500001, "errorRate 0.0500001 > 0.05"),
        ("dbConnectionErrorsPerMinute", 10.0000001, "dbConnectionErrorsPerMinute 10.0000001 > 10"),
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
    assert "value" not in status["metrics"][1]  # NaN is not JSON, and null would be dropped
    assert status["metrics"][1]["verdict"] == "Inconclusive"
    assert set(status) == {"at", "verdict", "metrics"}
    json.dumps(status, allow_nan=False)  # the API server would reject NaN/Infinity


def test_verdicts_are_their_status_strings() -> None:
    assert [str(v) for v in Verdict] == ["Pass", "Fail", "Inconclusive", "Error"]


# --- issue 12: the latency floor ----------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "delta", "verdict", "message"),
    [
        (3.0, 0.08, Verdict.PASS, "latencyRatio 3 > 2 but only p99 +0.08s <= 0.5s"),
        (3.0, 0.5, Verdict.PASS, "latencyRatio 3 > 2 but only p99 +0.5s <= 0.5s"),
        (3.0, 0.51, Verdict.FAIL, "latencyRatio 3 > 2 and p99 +0.51s > 0.5s"),
        (1.9, 5.0, Verdict.PASS, "latencyRatio 1.9 <= 2"),
        (3.0, math.nan, Verdict.INCONCLUSIVE, "latencyDeltaSeconds has no data"),
    ],
)
def test_the_latency_rule_fails_only_above_both_the_ratio_and_the_floor(
    ratio: float, delta: float, verdict: Verdict, message: str
) -> None:
    # given Temporal 3x slower at p99 (e.g. 120 ms vs 40 ms: +0.08 s) and the default floor
    result = run({"latencyRatio": Measurement(ratio), "latencyDeltaSeconds": Measurement(delta)})
    judged = metric(result, "latencyRatio")
    # then only a slowdown above the floor fails, and the message shows both comparisons
    assert judged.verdict == verdict
    assert message in judged.message


def test_a_zero_floor_judges_the_ratio_alone_and_a_failed_delta_query_is_an_error() -> None:
    no_floor = Thresholds.from_spec({"minLatencyDeltaSeconds": 0})
    measurements = {
        **HEALTHY,
        "latencyRatio": Measurement(3.0),
        "latencyDeltaSeconds": Measurement(None),
    }
    assert metric(assess(measurements, no_floor, MIN_SAMPLES, AT), "latencyRatio").verdict == (
        Verdict.FAIL
    )
    broken = run({"latencyRatio": Measurement(3.0), "latencyDeltaSeconds": Measurement(error="x")})
    assert metric(broken, "latencyRatio").verdict == Verdict.ERROR


# --- optional rules ----------------------------------------------------------------------


def test_an_optional_rule_without_data_is_shown_but_not_counted() -> None:
    # given the backlog gauge is not exported and the user marked queueDepth optional
    measurements = {**HEALTHY, "queueDepth": Measurement(None)}
    result = assess(measurements, Thresholds(), MIN_SAMPLES, AT, frozenset({"queueDepth"}))
    judged = metric(result, "queueDepth")
    # then the analysis passes, and the status says the rule was not counted
    assert result.verdict == Verdict.PASS
    assert not judged.counted and "optional: not counted" in judged.message
    assert judged.to_status()["counted"] is False
    # with data, an optional rule is judged as usual
    breached = {**HEALTHY, "queueDepth": Measurement(5000.0)}
    optional = frozenset({"queueDepth"})
    assert assess(breached, Thresholds(), MIN_SAMPLES, AT, optional).verdict == Verdict.FAIL


# --- issue 16, item 6: pre-flight ------------------------------------------------------------


def test_pre_flight_accepts_series_that_exist_without_traffic() -> None:
    # given 0% Temporal traffic: the counters and the histogram exist at 0, so the rates are NaN
    zero_traffic = {
        **HEALTHY,
        "sampleCount": Measurement(0.0),
        "errorRate": Measurement(math.nan),
        "latencyRatio": Measurement(math.nan),
        "latencyDeltaSeconds": Measurement(math.nan),
    }
    checked = preflight(zero_traffic, frozenset())
    assert checked.ok and checked.message == "pre-flight: every rule returned data"


def test_pre_flight_names_each_rule_that_cannot_see_and_spares_optional_ones() -> None:
    # given a latency query matching no series and an unreachable backlog source
    blind = {
        **HEALTHY,
        "latencyDeltaSeconds": Measurement(None),
        "queueDepth": Measurement(error="Prometheus at http://p unreachable: Connection refused"),
    }
    checked = preflight(blind, frozenset())
    assert not checked.ok
    assert checked.problems == (
        "latencyDeltaSeconds: no data (the query matched no series: is the metric scraped?)",
        "queueDepth: query failed: Prometheus at http://p unreachable: Connection refused",
    )
    assert "no traffic moved" in checked.message and "optionalRules" in checked.message
    # when both rules are optional, the start is allowed and says what had no data
    spared = preflight(blind, frozenset({"latencyRatio", "queueDepth"}))
    assert spared.ok and spared.skipped == ("latencyRatio", "queueDepth")


# --- issue 13: the sequential judge on the evidence since the step began --------------------

LE = (0.05, 0.1, 0.2, 0.5, math.inf)


def evidence(
    documents: float, failures: float, temporal: list[float], legacy: list[float]
) -> dict[str, Measurement]:
    """The four evidence queries' answers (fractional, as increase() extrapolates)."""
    return {
        "temporalDocuments": Measurement(documents),
        "temporalFailures": Measurement(failures),
        "temporalLatencyBuckets": Measurement(buckets=tuple(zip(LE, temporal, strict=True))),
        "legacyLatencyBuckets": Measurement(buckets=tuple(zip(LE, legacy, strict=True))),
    }


def test_evidence_is_rounded_to_whole_non_decreasing_counts() -> None:
    # given increase() answers extrapolated past whole counts, one bound missing for legacy
    measured = evidence(41.7, 44.2, [0.4, 20.6, 20.4, 41.2, 41.7], [10.3, 50.2, 90.1, 99.6, 99.9])
    measured["legacyLatencyBuckets"] = Measurement(
        buckets=((0.05, 10.3), (0.1, 50.2), (0.5, 99.6), (math.inf, 99.9))
    )
    found = step_evidence(measured)
    # then whole counts, failures within documents, rounding never makes a bucket decrease,
    # and a bound one path lacks holds the count of the bound below it
    assert (found.documents, found.failures) == (42, 42)
    assert found.le == LE
    assert found.temporal == (0, 21, 21, 41, 42)
    assert found.legacy == (10, 50, 50, 100, 100)


def test_no_evidence_series_yet_is_zero_and_a_failed_query_is_an_error() -> None:
    empty = {name: Measurement(None) for name in evidence(0, 0, [0] * 5, [0] * 5)}
    found = step_evidence(empty)
    assert (found.documents, found.temporal, found.le) == (0, (0,), (math.inf,))
    broken = {**empty, "temporalFailures": Measurement(error="timeout")}
    with pytest.raises(EvidenceError, match="temporalFailures query failed: timeout"):
        step_evidence(broken)


def sequential(
    changes: Mapping[str, Measurement], thresholds: Thresholds | None = None
) -> AnalysisResult:
    base = evidence(0, 0, [0] * 5, [0] * 5)
    measured = {**HEALTHY, **base, **changes}
    return assess_sequential(measured, thresholds or Thresholds(), 0.01, AT)


def test_the_sequential_judge_explains_each_verdict_with_its_bounds() -> None:
    # given 412 Temporal documents since the step began, 29 of them failed (7%)
    measured_412 = evidence(412.3, 29.4, [200, 400, 410, 412, 412], [900, 3600, 3700, 3708, 3708])
    result = sequential(measured_412)
    rate = metric(result, "errorRate")
    # then the error rate is Inconclusive, its interval and documents shown
    assert rate.verdict == Verdict.INCONCLUSIVE
    assert rate.evidence is not None and rate.evidence.documents == 412
    assert rate.evidence.lower < 0.05 < rate.evidence.upper
    assert re.fullmatch(
        r"error rate 0\.07 \[0\.0\d+, 0\.1\d*\] after 412 documents inconclusive \(limit 0\.05\)",
        rate.message,
    ), rate.message
    assert rate.to_status()["documents"] == 412 and "lower" in rate.to_status()
    # and the latency at p99 is not proved yet: a p99 upper bound takes >= 632 documents
    latency = metric(result, "latencyRatio")
    assert latency.verdict == Verdict.INCONCLUSIVE
    assert latency.message.startswith("latency p99 temporal ") and "inconclusive" in latency.message
    # while at p95 (both paths mostly under 0.1 s) it passes 2x, the bounds in the message
    p95 = sequential(measured_412, Thresholds.from_spec({"latencyQuantile": 0.95}))
    latency = metric(p95, "latencyRatio")
    assert latency.verdict == Verdict.PASS, latency.message
    assert latency.message.startswith("latency p95 temporal ")
    assert latency.message.endswith("<= 2x or +0.5s")
    assert latency.evidence is not None and latency.evidence.documents == 412
    # and the backlog and DB errors keep their limits
    assert metric(result, "queueDepth").message == "queueDepth 10 <= 1000"


@pytest.mark.parametrize(
    ("documents", "failures", "verdict", "text"),
    [
        (200, 0, Verdict.PASS, "error rate 0 [0, 0.0"),
        (20, 2, Verdict.INCONCLUSIVE, "after 20 documents inconclusive"),
        (100, 40, Verdict.FAIL, "after 100 documents > 0.05"),
        (0, 0, Verdict.INCONCLUSIVE, "error rate: no documents yet"),
    ],
)
def test_the_sequential_error_rate_needs_proof_both_ways(
    documents: int, failures: int, verdict: Verdict, text: str
) -> None:
    result = sequential(evidence(documents, failures, [0] * 5, [0] * 5))
    judged = metric(result, "errorRate")
    assert judged.verdict == verdict and text in judged.message


def test_the_sequential_judge_rolls_back_a_breach_and_keeps_the_latency_floor() -> None:
    # given Temporal 3x slower but by about 0.1 s, on plenty of documents: within the floor
    slow = [0, 0, 2000, 2000, 2000]  # every Temporal document in (0.1, 0.2]
    fast = [18000, 18000, 18000, 18000, 18000]  # every legacy one under 0.05
    result = sequential(evidence(2000, 0, slow, fast))
    assert metric(result, "latencyRatio").verdict == Verdict.PASS
    # and without the floor the same evidence proves a breach of 2x
    no_floor = Thresholds.from_spec({"minLatencyDeltaSeconds": 0})
    measured = {**HEALTHY, **evidence(2000, 0, slow, fast)}
    failed = assess_sequential(measured, no_floor, 0.01, AT)
    assert metric(failed, "latencyRatio").verdict == Verdict.FAIL
    assert failed.verdict == Verdict.FAIL


def test_a_failed_evidence_query_is_an_error_for_the_sampled_rules_only() -> None:
    result = sequential({"temporalDocuments": Measurement(error="Prometheus down")})
    assert metric(result, "errorRate").verdict == Verdict.ERROR
    assert "temporalDocuments query failed: Prometheus down" in metric(result, "errorRate").message
    assert metric(result, "queueDepth").verdict == Verdict.PASS
    assert result.verdict == Verdict.ERROR


def test_without_a_step_the_sequential_rules_have_no_evidence_and_do_not_decide() -> None:
    result = assess_sequential(HEALTHY, Thresholds(), 0.01, AT)  # e.g. after a rollback
    judged = metric(result, "errorRate")
    assert judged.verdict == Verdict.INCONCLUSIVE and "no step in progress" in judged.message

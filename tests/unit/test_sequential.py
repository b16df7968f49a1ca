"""The sequential judge's maths: bounds that are wrong anywhere make one of these fail.

Properties of the error-rate confidence sequence (order, range, monotonicity, symmetry,
width), its consistency with the verdicts, its anytime coverage checked by simulation at
every document (and the same checker catching a fixed-n Wilson interval that is not
anytime-valid), the latency judge's false-Fail rate at the edge of its null, power on
real regressions, and the messages.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from ingestion_operator.analysis.sequential import (
    Interval,
    _log_evidence_above,
    error_rate_interval,
    error_rate_verdict,
    judge_error_rate,
    judge_latency,
    quantile_interval,
)
from ingestion_operator.analysis.types import Verdict

BRIEF_LE = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60)
ROUTER_LE = (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
             0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)  # fmt: skip

# (failures, documents): any split, and often the few failures real error rates have
counts = st.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: st.tuples(
        st.integers(min_value=0, max_value=n) | st.integers(min_value=0, max_value=min(n, 30)),
        st.just(n),
    )
)
alphas = st.floats(min_value=0.001, max_value=0.5)


def histogram(values: np.ndarray, le: tuple[float, ...]) -> list[int]:
    """Cumulative Prometheus-style bucket counts (the last bound is +Inf)."""
    return [int(c) for c in np.searchsorted(np.sort(values), le, side="right")] + [len(values)]


# -- error rate: properties of the interval ------------------------------------------


@settings(max_examples=200, deadline=None)
@given(counts, alphas)
def test_interval_is_ordered_and_within_zero_one(kn: tuple[int, int], alpha: float) -> None:
    """Given any counts / when bounded / then 0 <= lower <= estimate <= upper <= 1."""
    k, n = kn
    interval = error_rate_interval(k, n, alpha)
    assert 0.0 <= interval.lower <= interval.estimate <= interval.upper <= 1.0
    assert interval.estimate == k / n and interval.n == n
    assert (interval.lower > 0) == (k > 0) and (interval.upper < 1) == (k < n)


@settings(max_examples=100, deadline=None)
@given(counts, alphas)
def test_more_failures_move_both_bounds_up(kn: tuple[int, int], alpha: float) -> None:
    """Given one more failure among the same documents / then neither bound goes down."""
    k, n = kn
    assume(k < n)
    fewer, more = error_rate_interval(k, n, alpha), error_rate_interval(k + 1, n, alpha)
    assert more.lower >= fewer.lower and more.upper >= fewer.upper


@settings(max_examples=100, deadline=None)
@given(counts, alphas)
def test_failures_and_successes_are_symmetric(kn: tuple[int, int], alpha: float) -> None:
    """Given k failures, then n - k failures / then the interval mirrors around 1/2."""
    k, n = kn
    interval, mirror = error_rate_interval(k, n, alpha), error_rate_interval(n - k, n, alpha)
    assert mirror.lower == pytest.approx(1 - interval.upper, abs=1e-12)
    assert mirror.upper == pytest.approx(1 - interval.lower, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(counts, alphas, alphas)
def test_a_smaller_alpha_gives_a_wider_interval(kn: tuple[int, int], a: float, b: float) -> None:
    """Given two levels / then the more confident interval contains the other."""
    k, n = kn
    assume(a != b)
    small, large = sorted((a, b))
    strict, loose = error_rate_interval(k, n, small), error_rate_interval(k, n, large)
    assert strict.lower <= loose.lower and strict.upper >= loose.upper


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05, 0.2, 0.5])
def test_the_interval_narrows_as_documents_accumulate(rate: float) -> None:
    """Given a fixed observed rate / when n grows 4x at a time / then the width shrinks,
    about as 1/sqrt(n) (times a slowly growing log factor: the price of anytime)."""
    widths = []
    for n in (25, 100, 400, 1600, 6400, 25600):
        interval = error_rate_interval(round(rate * n), n, 0.05)
        widths.append(interval.upper - interval.lower)
    assert all(later < earlier for earlier, later in itertools.pairwise(widths))
    assert widths[-1] < widths[1] * 0.2  # 256x the documents: 1/16 at 1/sqrt(n), log slack


def test_no_documents_bound_nothing() -> None:
    """Given no documents / then [0, 1], estimate NaN, and no verdict."""
    interval = error_rate_interval(0, 0, 0.01)
    assert (interval.lower, interval.upper, interval.n) == (0.0, 1.0, 0)
    assert math.isnan(interval.estimate)
    assert error_rate_verdict(0, 0, 0.05) == Verdict.INCONCLUSIVE


def test_the_truncation_bound_stays_below_the_exact_mixture() -> None:
    """Given the one-sided Jeffreys mixture computed by numerical integration / then the
    closed-form evidence never exceeds it (a lower bound keeps validity) and loses
    almost nothing where a decision is made."""
    theta_grid = (np.arange(400_000) + 0.5) / 400_000
    for k, n, p0 in [(10, 50, 0.05), (30, 200, 0.05), (3, 400, 0.05), (95, 100, 0.9), (0, 3, 0.1)]:
        theta = p0 + (1 - p0) * theta_grid
        log_ratio = k * np.log(theta / p0) + (n - k) * np.log((1 - theta) / (1 - p0))
        prior = 1 / np.sqrt(theta * (1 - theta))
        exact = math.log(np.mean(np.exp(log_ratio) * prior) / np.mean(prior))
        bound = _log_evidence_above(k, n, p0)
        assert bound <= exact + 1e-6
        if exact > math.log(100):
            assert bound > exact - 0.01


# -- error rate: verdicts agree with bounds ------------------------------------------


@settings(max_examples=150, deadline=None)
@given(counts, st.floats(min_value=0.001, max_value=0.5), st.sampled_from([0.01, 0.05, 0.1]))
def test_verdict_and_printed_bounds_agree(kn: tuple[int, int], limit: float, alpha: float) -> None:
    """Given any counts and limit / when judged / then Fail means lower > limit, Pass means
    upper <= limit, Inconclusive means lower <= limit < upper, in numbers and in print."""
    k, n = kn
    judgement = judge_error_rate(k, n, limit, alpha)
    lower, upper = judgement.interval.lower, judgement.interval.upper
    assert judgement.verdict == error_rate_verdict(k, n, limit, alpha)
    printed = re.search(r"\[(\S+), (\S+)\]", judgement.message)
    assert printed is not None
    shown_lower, shown_upper = float(printed[1]), float(printed[2])
    if judgement.verdict == Verdict.FAIL:
        assert lower >= limit and shown_lower > limit
        assert judgement.message.endswith(f"> {limit!r}")
    elif judgement.verdict == Verdict.PASS:
        assert upper <= limit and shown_upper <= limit
        assert judgement.message.endswith(f"<= {limit!r}")
    else:
        assert lower <= limit <= upper and shown_lower <= limit <= shown_upper


@settings(max_examples=40, deadline=None)
@given(counts)
def test_the_interval_is_exactly_the_set_of_limits_not_rejected(kn: tuple[int, int]) -> None:
    """Given the 98% interval (1% per side) / when the verdict at alpha 0.01 is asked at
    limits across [0, 1] / then every limit below the lower bound Fails, above the upper
    bound Passes, and in between stays Inconclusive: the bisection found the one
    boundary there is, and the interval spends alpha / 2 per side. The judge's own
    bounds are that interval."""
    k, n = kn
    interval = error_rate_interval(k, n, 0.02)
    judged = judge_error_rate(k, n, 0.05, 0.01).interval
    assert judged.lower == pytest.approx(interval.lower, rel=1e-12, abs=1e-15)
    assert judged.upper == pytest.approx(interval.upper, rel=1e-12, abs=1e-15)
    for limit in np.linspace(0.0005, 0.9995, 301):
        verdict = error_rate_verdict(k, n, float(limit), 0.01)
        if limit < interval.lower * (1 - 1e-9):
            assert verdict == Verdict.FAIL, limit
        elif limit > interval.upper * (1 + 1e-9):
            assert verdict == Verdict.PASS, limit
        elif interval.lower * (1 + 1e-9) < limit < interval.upper * (1 - 1e-9):
            assert verdict == Verdict.INCONCLUSIVE, limit


# -- error rate: anytime coverage, by simulation -------------------------------------


def ever_excluded(
    excludes: Callable[[int, int, float], bool], p: float, streams: int, length: int, seed: int
) -> float:
    """Share of Bernoulli(p) streams whose running interval excludes p at SOME n <= length."""
    rng = random.Random(seed)
    missed = 0
    for _ in range(streams):
        failures = 0
        for n in range(1, length + 1):
            failures += rng.random() < p
            if excludes(failures, n, p):
                missed += 1
                break
    return missed / streams


def sequential_excludes(alpha: float) -> Callable[[int, int, float], bool]:
    """error_rate_interval(k, n, alpha) leaves p out exactly when one of its one-sided
    tests (alpha/2 each) rejects p: the verdict at limit p, at level alpha/2, is not
    Inconclusive. (Checked against the bisection by the test above; cheap enough to ask
    at every document.)"""
    return lambda k, n, p: error_rate_verdict(k, n, p, alpha / 2) != Verdict.INCONCLUSIVE


def wilson_excludes(alpha: float) -> Callable[[int, int, float], bool]:
    """The planted bug: a fixed-n Wilson score interval, valid at ONE n only."""
    z = {0.1: 1.6449, 0.05: 1.96}[alpha]

    def excludes(k: int, n: int, p: float) -> bool:
        centre = (k + z * z / 2) / (n + z * z)
        half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
        return not centre - half <= p <= centre + half

    return excludes


@pytest.mark.parametrize("p", [0.0, 0.01, 0.05, 0.2, 0.5])
def test_the_interval_covers_the_true_rate_at_every_n_at_once(p: float) -> None:
    """Given 300 Bernoulli(p) streams of 1000 documents / when the interval is checked
    after every document / then at most alpha of the streams ever exclude p (plus 3
    Monte Carlo standard errors)."""
    alpha, streams = 0.1, 300
    share = ever_excluded(sequential_excludes(alpha), p, streams, 1000, seed=int(p * 1000))
    assert share <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / streams)


def test_the_checker_catches_an_interval_that_is_only_valid_at_a_fixed_n() -> None:
    """Given the same checker and a 90% Wilson interval (correct for one n) / when looked
    at after every document / then far more than 10% of streams exclude p at some n:
    the coverage test above would fail a method that is not anytime-valid."""
    alpha, streams = 0.1, 200
    share = ever_excluded(wilson_excludes(alpha), 0.2, streams, 1000, seed=7)
    assert share > 3 * alpha


# -- error rate: power -------------------------------------------------------------


def test_a_15_percent_error_rate_fails_a_5_percent_limit_within_hundreds_of_documents() -> None:
    """Given 50 streams at a true 15% / then every one Fails within 400 documents."""
    rng = random.Random(15)
    needed = []
    for _ in range(50):
        failures = 0
        for n in range(1, 401):
            failures += rng.random() < 0.15
            if error_rate_verdict(failures, n, 0.05) == Verdict.FAIL:
                needed.append(n)
                break
    assert len(needed) == 50 and sorted(needed)[25] < 150


@pytest.mark.parametrize(
    ("failures", "message"),
    [
        (60, "error rate 0.15 [0.087, 0.22] after 412 documents > 0.05"),
        (29, "error rate 0.07 [0.031, 0.12] after 412 documents inconclusive (limit 0.05)"),
        (5, "error rate 0.012 [0.001, 0.04] after 412 documents <= 0.05"),
    ],
)
def test_error_rate_messages(failures: int, message: str) -> None:
    """Given 412 documents / then the estimate, both bounds, the evidence and the
    comparison that decided, two significant digits unless more are needed."""
    assert judge_error_rate(failures, 412, 0.05).message == message


def test_two_failures_in_twenty_documents_are_not_a_rollback() -> None:
    """Given the motivating case (2/20 reads 10% > 5%) / then Inconclusive, not Fail."""
    judgement = judge_error_rate(2, 20, 0.05)
    assert judgement.verdict == Verdict.INCONCLUSIVE
    assert judgement.message.endswith("after 20 documents inconclusive (limit 0.05)")


def test_a_clean_stream_passes_after_109_documents() -> None:
    """Given no failures / then the 5% limit is proved at alpha 0.01 after 109 documents
    (the number the module docstring and the bench quote)."""
    assert error_rate_verdict(0, 108, 0.05) == Verdict.INCONCLUSIVE
    assert error_rate_verdict(0, 109, 0.05) == Verdict.PASS


# -- latency ------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=500), min_size=17, max_size=17),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
    alphas,
)
def test_quantile_bounds_are_bucket_bounds_around_the_estimate(
    per_bucket: list[int], q: float, alpha: float
) -> None:
    """Given any histogram / then lower <= estimate <= upper, each bound a bucket bound
    (or 0 / +Inf when nothing is proved)."""
    cumulative = list(np.cumsum(per_bucket).tolist())
    le = (*BRIEF_LE, math.inf)
    interval = quantile_interval(q, le, cumulative, alpha)
    assume(interval.n > 0)
    assert interval.lower <= interval.estimate <= interval.upper
    assert interval.lower in (0.0, *le) and interval.upper in le


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=300), min_size=17, max_size=17),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
    alphas,
)
def test_quantile_bounds_are_the_error_rate_tests_at_half_alpha(
    per_bucket: list[int], q: float, alpha: float
) -> None:
    """Given any histogram / then the upper bound is the first bucket bound whose share
    of slower documents is proved below 1 - q, the lower bound the last one whose share
    is proved above, each by the error-rate test at alpha / 2; and the latency judge
    uses exactly these intervals for both paths."""
    cumulative = np.cumsum(per_bucket).tolist()
    le = (*BRIEF_LE, math.inf)
    n = cumulative[-1]
    assume(n > 0)
    slower = [error_rate_verdict(n - c, n, 1 - q, alpha / 2) for c in cumulative[:-1]]
    upper = next((b for b, v in zip(le, slower, strict=False) if v == Verdict.PASS), math.inf)
    lower = max((b for b, v in zip(le, slower, strict=False) if v == Verdict.FAIL), default=0.0)
    interval = quantile_interval(q, le, cumulative, alpha)
    assert (interval.lower, interval.upper) == (lower, upper)
    other = np.cumsum(per_bucket[::-1]).tolist()
    judgement = judge_latency(other, cumulative, le, max_ratio=2.0, quantile=q, alpha=alpha)
    assert judgement.legacy == interval
    assert judgement.temporal == quantile_interval(q, le, other, alpha)


# The edge of "healthy" at ratio 2, built so that a false Fail needs one bound to miss
# at its exact null: legacy's p90 is 1.0 (85% of documents near 0.25, 15% at 1.0: its
# upper bound 1.0 is proved quickly), Temporal's p90 is exactly 2.0 (90% uniform below
# 2.0, 10% at 3.0), so Fail <=> Temporal's lower bound wrongly reaches 2.0.
NULL_LE = (0.5, 1.0, 2.0, 2.5, math.inf)


def cumulative_counts(values: np.ndarray) -> np.ndarray:
    """Row i: the cumulative bucket counts of values[: i + 1] over NULL_LE."""
    one_hot = np.eye(len(NULL_LE), dtype=int)[np.searchsorted(NULL_LE, values)]
    return np.cumsum(one_hot, axis=0).cumsum(axis=1)


def test_latency_at_the_edge_of_healthy_fails_at_most_alpha_of_streams() -> None:
    """Given 200 streams of 500 Temporal documents (and 9x legacy) whose p90s are exactly
    2x apart / when judged after every Temporal document / then at most alpha of the
    streams ever Fail (plus 3 Monte Carlo standard errors)."""
    alpha, streams, length = 0.1, 200, 500
    rng = np.random.default_rng(2)
    failed = 0
    for _ in range(streams):
        legacy = cumulative_counts(np.where(rng.uniform(size=9 * length) < 0.85, 0.25, 1.0))
        slow = np.where(rng.uniform(size=length) < 0.9, rng.uniform(0, 2.0, length), 3.0)
        temporal = cumulative_counts(slow)
        for n in range(length):
            judgement = judge_latency(
                temporal[n].tolist(),
                legacy[9 * n + 8].tolist(),
                NULL_LE,
                max_ratio=2.0,
                quantile=0.9,
                alpha=alpha,
            )
            if judgement.verdict == Verdict.FAIL:
                failed += 1
                break
    assert failed / streams <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / streams)


def lognormal_histograms(
    slowdown: float, temporal: int, le: tuple[float, ...], seed: int
) -> tuple[list[int], list[int]]:
    """Legacy lognormal (median 40 ms, sigma 0.5, 9x the documents), Temporal slowed."""
    rng = np.random.default_rng(seed)
    legacy = rng.lognormal(math.log(0.04), 0.5, 9 * temporal)
    slow = slowdown * rng.lognormal(math.log(0.04), 0.5, temporal)
    return histogram(slow, le), histogram(legacy, le)


@pytest.mark.parametrize("le", [BRIEF_LE, ROUTER_LE], ids=["brief buckets", "router buckets"])
def test_a_3x_latency_regression_fails(le: tuple[float, ...]) -> None:
    """Given Temporal 3x slower at every quantile / then p95 Fails with 4000 documents."""
    temporal, legacy = lognormal_histograms(3.0, 4000, le, seed=3)
    judgement = judge_latency(temporal, legacy, (*le, math.inf), max_ratio=2.0, quantile=0.95)
    assert judgement.verdict == Verdict.FAIL, judgement.message


@pytest.mark.parametrize("slowdown", [1.0, 1.25])
def test_a_healthy_latency_stream_passes_eventually(slowdown: float) -> None:
    """Given Temporal as fast as legacy or 1.25x / then p95 Passes with the router's
    buckets after 2000 documents."""
    temporal, legacy = lognormal_histograms(slowdown, 2000, ROUTER_LE, seed=4)
    judgement = judge_latency(
        temporal, legacy, (*ROUTER_LE, math.inf), max_ratio=2.0, quantile=0.95
    )
    assert judgement.verdict == Verdict.PASS, judgement.message


@pytest.mark.parametrize("q", [0.9, 0.99])
def test_two_slow_documents_out_of_twenty_do_not_fail_latency(q: float) -> None:
    """Given 18 documents at 40 ms and 2 at 5 s (a 10% slow tail a p99 would read as
    >100x) against 180 normal legacy documents / then not a Fail."""
    temporal = np.array([0.04] * 18 + [5.0, 5.0])
    legacy = np.random.default_rng(5).lognormal(math.log(0.04), 0.5, 180)
    le = (*BRIEF_LE, math.inf)
    judgement = judge_latency(
        histogram(temporal, BRIEF_LE), histogram(legacy, BRIEF_LE), le, max_ratio=2.0, quantile=q
    )
    assert judgement.verdict == Verdict.INCONCLUSIVE, judgement.message


def test_a_small_absolute_slowdown_passes_with_min_delta() -> None:
    """Given Temporal's p95 bucket is (0.1, 0.25] and legacy's (0.075, 0.1] (2.5x apart
    as buckets) / then no ratio Pass, but a 0.2 s floor Passes."""
    temporal, legacy = lognormal_histograms(1.5, 3000, BRIEF_LE, seed=6)
    le = (*BRIEF_LE, math.inf)
    strict = judge_latency(temporal, legacy, le, max_ratio=2.0, quantile=0.95)
    floor = judge_latency(temporal, legacy, le, max_ratio=2.0, quantile=0.95, min_delta_seconds=0.2)
    assert strict.verdict == Verdict.INCONCLUSIVE and floor.verdict == Verdict.PASS
    assert floor.message.endswith("<= 2x or +0.2s")


def test_latency_message_shows_both_paths_and_the_evidence() -> None:
    """Given histograms / then "latency p99 temporal 0.12s [0.1, 0.25] vs legacy ..."."""
    temporal, legacy = lognormal_histograms(3.0, 4000, BRIEF_LE, seed=3)
    judgement = judge_latency(temporal, legacy, (*BRIEF_LE, math.inf), max_ratio=2.0, quantile=0.95)
    pattern = (
        r"latency p95 temporal \S+s \[\S+, \S+\] vs legacy \S+s \[\S+, \S+\] "
        r"after 4000/36000 documents > 2x"
    )
    assert re.fullmatch(pattern, judgement.message), judgement.message


def test_no_legacy_documents_is_inconclusive() -> None:
    """Given no legacy traffic (the 100% step) / then Inconclusive, whatever Temporal does."""
    temporal, _ = lognormal_histograms(3.0, 4000, BRIEF_LE, seed=3)
    none = [0] * (len(BRIEF_LE) + 1)
    judgement = judge_latency(temporal, none, (*BRIEF_LE, math.inf), max_ratio=2.0)
    assert judgement.verdict == Verdict.INCONCLUSIVE
    assert judgement.legacy == Interval(0.0, math.inf, judgement.legacy.estimate, 0)
    assert "legacy no documents" in judgement.message


# -- messages and validation --------------------------------------------------------


def test_a_bound_just_above_the_limit_never_prints_as_the_limit() -> None:
    """Given a Fail whose lower bound is within 1% of 0.05 / then the message prints
    enough digits to show it above 0.05 (never "[0.05, ...] > 0.05")."""
    n = next(
        n
        for n in range(200, 20_000)
        if 0.05 < judge_error_rate(round(0.08 * n), n, 0.05).interval.lower < 0.0505
    )
    judgement = judge_error_rate(round(0.08 * n), n, 0.05)
    assert judgement.verdict == Verdict.FAIL
    shown = re.search(r"\[(\S+),", judgement.message)
    assert shown is not None and shown[1] != "0.05" and float(shown[1]) > 0.05
    assert re.fullmatch(
        rf"error rate 0.08 \[\S+, \S+\] after {n} documents > 0.05", judgement.message
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: error_rate_interval(1, 10, 0.0), "alpha"),
        (lambda: error_rate_interval(1, 10, 1.0), "alpha"),
        (lambda: error_rate_interval(11, 10, 0.01), "cannot exceed"),
        (lambda: error_rate_interval(-1, 10, 0.01), ">= 0"),
        (lambda: error_rate_verdict(1, 10, -0.1), "limit"),
        (lambda: quantile_interval(1.0, (1.0, math.inf), [1, 2], 0.01), "quantile"),
        (lambda: quantile_interval(0.9, (1.0, 2.0), [1, 2], 0.01), r"\+Inf"),
        (lambda: quantile_interval(0.9, (2.0, 1.0, math.inf), [1, 2, 3], 0.01), "increasing"),
        (lambda: quantile_interval(0.9, (1.0, math.inf), [3, 2], 0.01), "must not decrease"),
        (lambda: quantile_interval(0.9, (1.0, math.inf), [1.5, 2], 0.01), "whole"),  # type: ignore[list-item]
        (lambda: quantile_interval(0.9, (1.0, math.inf), [1, 2, 3], 0.01), "bucket bounds"),
        (lambda: judge_latency([1, 2], [1], (1.0, math.inf), max_ratio=2.0), "legacy"),
        (lambda: judge_latency([1, 2], [1, 2], (1.0, math.inf), max_ratio=-1.0), "max_ratio"),
    ],
)
def test_invalid_inputs_are_value_errors(call: Callable[[], object], match: str) -> None:
    """Given an impossible input / then a ValueError that says which."""
    with pytest.raises(ValueError, match=match):
        call()

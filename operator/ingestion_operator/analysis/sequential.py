"""The sequential judge: verdicts that stay honest however often the rollout is looked at.

The threshold judge compares one windowed number with a limit, so at low traffic it
judges noise (2 failures in 20 documents read 10% and roll a healthy rollout back),
and asking a fixed-sample test again every 30 s multiplies its false alarms. Here each
rule is judged on the evidence counted since the current step began, through
confidence sequences: bounds that hold at every document count at once with
probability >= 1 - alpha (Ville's inequality on a nonnegative supermartingale; Howard
et al., "Time-uniform, nonparametric, nonasymptotic confidence sequences"; Lindon et
al., KDD 2022). A rule Fails only when its bound proves the limit broken, Passes only
when its bound proves the limit kept, and is Inconclusive in between; so it may be
asked as often as one likes, and a rollout can be watched continuously.

Error rate. The evidence that a rate exceeds p0 is a one-sided conjugate mixture: the
likelihood ratio against p0 averaged over the Jeffreys prior Beta(1/2, 1/2) restricted
to rates above p0 (Krichevsky-Trofimov: near-minimax regret, nothing to tune). Under
any rate <= p0 it is a supermartingale. Its closed form needs a Beta tail, which we
bound instead (stdlib only): I_x(a, b) <= x^a (1 - x)^b / (B(a, b) (a - (a + b) x)) for
x < a / (a + b), so we use a lower bound of the martingale and keep every guarantee
(it gives up < 0.001 nats where decisions are made). One-sided priors need 109 documents,
not the 150 of the two-sided mixture, to pass a 5% limit at 0% errors. The interval is
the set of rates neither side rejects; it is found by bisection, the evidence being
monotone in p0 where it matters (tests/unit/test_sequential.py checks both).

A verdict can only be wrong on one side (a false Fail needs a rate <= limit, a false
Pass one > limit), so the judge gives each side the whole alpha. At alpha 0.01 a 5%
limit Passes after 109 documents at a true 0%, ~450 at 2% and ~5000-6400 at 4% (a rate
near its limit cannot be told from it quickly: the price of bounded false alarms); a
15% rate Fails after ~80-90 documents, an 8% rate after ~800-1000.

Latency. Each path's q-quantile gets a confidence sequence with no union bound over
buckets (Howard & Ramdas, "Sequential estimation of quantiles"): a bucket bound b lies
below the quantile only if the share of documents <= b is below q, so one test of "that
share vs q" per bound, read in bucket order, brackets the quantile between two bucket
bounds; a bound below the quantile holds no more documents than the quantile itself
and evidence grows with the count, so it can only be proved above by the error the
test at the quantile makes anyway. A value is only known to lie in its bucket, so the
bounds are bucket edges (conservative); the estimate is Prometheus's interpolation.
Each path gets alpha / 2 per side, so a wrong latency verdict has probability <= alpha.
Fail: Temporal's lower bound >= ratio x legacy's upper bound and >= legacy's upper
bound + min_delta_seconds (the quantile lies strictly above its lower bound). Pass:
Temporal's upper bound <= ratio x legacy's lower bound, or <= legacy's lower bound +
min_delta_seconds (an absolute slowdown nobody feels).

Choose the buckets and the quantile together. The bounds move a whole bucket at a
time, so a bucket wider than the ratio blocks a verdict for good: with bounds (...,
0.075, 0.1, 0.25, 0.5, ...) a quantile inside (0.1, 0.25] never Passes 2x (0.25 > 2 x
0.1) unless min_delta_seconds >= 0.15, and a 3x regression of a legacy quantile in
(0.1, 0.167] is never proved. The router's contract histogram (steps <= 1.5x) avoids
this. And a tail needs documents even when the bucket is generous: proving the
q-quantile below a bound that every document fell under takes 61 documents at q=0.9,
124 at 0.95, 632 at 0.99 (alpha 0.01), far more when the quantile is near the bound.
For the sequential judge use q=0.95 (or 0.9), not 0.99: bench/judge_bench.py prints
the documents each needs for a 40 ms lognormal.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingestion_operator.analysis.numbers import against
from ingestion_operator.analysis.types import Verdict

DEFAULT_ALPHA = 0.01
_LOG_PI = math.log(math.pi)  # log B(1/2, 1/2), the Jeffreys normaliser
_BISECTIONS = 80  # from [0, 1]: 1e-24 absolute, full precision for any bound we print


@dataclass(frozen=True)
class Interval:
    """Bounds on a rate or a quantile after `n` observations; estimate NaN when n == 0."""

    lower: float
    upper: float
    estimate: float
    n: int


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1): {alpha}")


def _check_counts(failures: int, n: int) -> None:
    if n < 0 or failures < 0:
        raise ValueError(f"counts must be >= 0: failures={failures}, n={n}")
    if failures > n:
        raise ValueError(f"failures ({failures}) cannot exceed documents ({n})")


def _log_evidence_above(k: int, n: int, p0: float) -> float:
    """Log of a lower bound on the one-sided mixture martingale against "rate <= p0",
    after k events in n trials. -inf: no evidence at all."""
    if p0 <= 0.0:
        return math.inf if k > 0 else -math.inf  # one event refutes a zero rate
    gap = k + 0.5 - (n + 1) * p0
    if p0 >= 1.0 or gap <= 0.0:
        return -math.inf  # the data do not lean above p0: the bound is vacuous
    log_beta = math.lgamma(k + 0.5) + math.lgamma(n - k + 0.5) - math.lgamma(n + 1.0)
    log_mix = log_beta - _LOG_PI - k * math.log(p0) - (n - k) * math.log1p(-p0)
    # the prior mass of the wrong side that the restricted mixture drops, bounded above
    log_tail = 0.5 * (math.log(p0) + math.log1p(-p0)) - _LOG_PI - log_mix - math.log(gap)
    if log_tail >= 0.0:
        return -math.inf
    prior_above = 2.0 / math.pi * math.asin(math.sqrt(1.0 - p0))
    return log_mix + math.log1p(-math.exp(log_tail)) - math.log(prior_above)


def _log_evidence_below(k: int, n: int, p0: float) -> float:
    """The same against "rate >= p0": the mirror image (non-events above 1 - p0)."""
    return _log_evidence_above(n - k, n, 1.0 - p0)


def _boundary(rejects: Callable[[float], bool], rejected: float, kept: float) -> float:
    """The edge between rejected and kept values by bisection; returns the rejected end,
    so the reported bound is never tighter than the exact one."""
    for _ in range(_BISECTIONS):
        middle = 0.5 * (rejected + kept)
        if middle in (rejected, kept):
            break
        if rejects(middle):
            rejected = middle
        else:
            kept = middle
    return rejected


def _rate_interval(k: int, n: int, log_level: float, pivot: float | None = None) -> Interval:
    """Both one-sided bounds at evidence level exp(log_level). A pivot (the limit) is
    classified first, with the very test the verdict uses, so bounds and verdict agree."""
    if n == 0:
        return Interval(0.0, 1.0, math.nan, 0)

    def low(p: float) -> bool:
        return _log_evidence_above(k, n, p) >= log_level

    def high(p: float) -> bool:
        return _log_evidence_below(k, n, p) >= log_level

    estimate = k / n
    lower, upper = 0.0, 1.0
    if k > 0:
        start, end = 0.0, estimate
        if pivot is not None and 0.0 < pivot < estimate:
            start, end = (pivot, end) if low(pivot) else (start, pivot)
        lower = _boundary(low, start, end)
    if k < n:
        start, end = 1.0, estimate
        if pivot is not None and estimate < pivot < 1.0:
            start, end = (pivot, end) if high(pivot) else (start, pivot)
        upper = _boundary(high, start, end)
    return Interval(lower, upper, estimate, n)


def error_rate_interval(failures: int, n: int, alpha: float) -> Interval:
    """A (1 - alpha) confidence sequence for a failure rate: it holds at every n at once.

    n == 0 gives [0, 1] (estimate NaN). Each side has alpha / 2.
    """
    _check_alpha(alpha)
    _check_counts(failures, n)
    return _rate_interval(failures, n, math.log(2.0 / alpha))


def error_rate_verdict(
    failures: int, n: int, limit: float, alpha: float = DEFAULT_ALPHA
) -> Verdict:
    """Fail once the rate is proved above `limit`, Pass once proved at or below it.

    Each verdict is wrong with probability <= alpha over the whole step, however often
    it is asked. Cheap (one test at the limit): the bounds are `judge_error_rate`'s.
    """
    _check_alpha(alpha)
    _check_counts(failures, n)
    if not math.isfinite(limit) or limit < 0.0:
        raise ValueError(f"limit must be a finite rate >= 0: {limit}")
    if limit >= 1.0:
        return Verdict.PASS
    log_level = math.log(1.0 / alpha)
    if _log_evidence_above(failures, n, limit) >= log_level:
        return Verdict.FAIL
    if limit > 0.0 and _log_evidence_below(failures, n, limit) >= log_level:
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class ErrorRateJudgement:
    """A verdict with the one-sided (1 - alpha) bounds that decided it."""

    verdict: Verdict
    interval: Interval
    limit: float

    @property
    def message(self) -> str:
        return error_rate_message(self.interval, self.limit, self.verdict)


def judge_error_rate(
    failures: int, n: int, limit: float, alpha: float = DEFAULT_ALPHA
) -> ErrorRateJudgement:
    """`error_rate_verdict` with its bounds (lower > limit on Fail, upper <= limit on Pass)."""
    verdict = error_rate_verdict(failures, n, limit, alpha)
    pivot = limit if 0.0 < limit < 1.0 else None
    interval = _rate_interval(failures, n, math.log(1.0 / alpha), pivot)
    return ErrorRateJudgement(verdict, interval, limit)


def error_rate_message(interval: Interval, limit: float, verdict: Verdict) -> str:
    """ "error rate 0.071 [0.055, 0.094] after 412 documents > 0.05" and the like."""
    if interval.n == 0:
        return f"error rate: no documents yet (limit {limit!r})"
    lower, upper = against(interval.lower, limit), against(interval.upper, limit)
    head = f"error rate {interval.estimate:.2g} [{lower}, {upper}] after {interval.n} documents"
    if verdict == Verdict.FAIL:
        return f"{head} > {limit!r}"
    if verdict == Verdict.PASS:
        return f"{head} <= {limit!r}"
    return f"{head} {verdict.value.lower()} (limit {limit!r})"


def _check_histogram(le: Sequence[float], counts: Sequence[int], path: str) -> None:
    if len(counts) != len(le):
        raise ValueError(f"{path}: {len(counts)} bucket counts for {len(le)} bucket bounds")
    previous: float = 0
    for count in counts:
        if not float(count).is_integer() or count < 0:
            raise ValueError(f"{path}: bucket counts must be whole numbers >= 0: {list(counts)}")
        if count < previous:
            raise ValueError(f"{path}: cumulative bucket counts must not decrease: {list(counts)}")
        previous = count


def _check_bounds(le: Sequence[float]) -> None:
    if not le or le[-1] != math.inf:
        raise ValueError(f"bucket bounds must end with +Inf: {list(le)}")
    if le[0] <= 0.0 or any(later <= earlier for earlier, later in itertools.pairwise(le)):
        raise ValueError(f"bucket bounds must be positive and increasing: {list(le)}")


def _interpolated(q: float, le: Sequence[float], counts: Sequence[int]) -> float:
    """Prometheus's histogram_quantile: linear within the bucket holding rank q * n."""
    rank = q * counts[-1]
    j = next(i for i, count in enumerate(counts) if count >= rank)
    if math.isinf(le[j]):
        return le[-2] if len(le) > 1 else math.nan
    start, below = (le[j - 1], counts[j - 1]) if j > 0 else (0.0, 0)
    inside = counts[j] - below
    return start + (le[j] - start) * (rank - below) / inside if inside else le[j]


def quantile_interval(
    q: float, le: Sequence[float], counts: Sequence[int], alpha: float
) -> Interval:
    """A (1 - alpha) confidence sequence for the q-quantile of bucketed observations.

    le: increasing positive upper bounds ending with +Inf; counts: cumulative counts per
    bound (the last is n). The quantile is proved <= upper and > lower; both are bucket
    bounds (lower 0 and upper +Inf when nothing is proved). alpha / 2 per side.
    """
    _check_alpha(alpha)
    _check_quantile(q)
    _check_bounds(le)
    _check_histogram(le, counts, "histogram")
    return _quantile_interval(q, le, counts, math.log(2.0 / alpha))


def _check_quantile(q: float) -> None:
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1) for a sequential bound: {q}")


def _quantile_interval(
    q: float, le: Sequence[float], counts: Sequence[int], level: float
) -> Interval:
    n = int(counts[-1])
    if n == 0:
        return Interval(0.0, math.inf, math.nan, 0)
    # A bound below the quantile holds a share < q of the documents, and counts only grow
    # with the bound: so the first bound proved to hold more than q is above the quantile
    # (and symmetrically for the lower bound). Only bounds on the right side can be proved.
    rank = bisect.bisect_left(counts, q * n)
    finite = len(le) - 1
    upper = next(
        (le[j] for j in range(rank, finite) if _log_evidence_above(int(counts[j]), n, q) >= level),
        math.inf,
    )
    lower = next(
        (
            le[j]
            for j in reversed(range(rank))
            if _log_evidence_below(int(counts[j]), n, q) >= level
        ),
        0.0,
    )
    return Interval(lower, upper, _interpolated(q, le, counts), n)


@dataclass(frozen=True)
class LatencyJudgement:
    """The latency verdict with both paths' quantile bounds (their n: the documents)."""

    verdict: Verdict
    quantile: float
    max_ratio: float
    min_delta_seconds: float
    temporal: Interval
    legacy: Interval

    @property
    def message(self) -> str:
        return latency_message(self)


def judge_latency(
    temporal: Sequence[int],
    legacy: Sequence[int],
    le: Sequence[float],
    *,
    max_ratio: float,
    quantile: float = 0.99,
    alpha: float = DEFAULT_ALPHA,
    min_delta_seconds: float = 0.0,
) -> LatencyJudgement:
    """Is Temporal's q-quantile more than max_ratio times legacy's (and more than
    min_delta_seconds slower)? Fail, Pass or Inconclusive; wrong with probability <= alpha.

    temporal, legacy: cumulative bucket counts since the step began, over the bounds le.
    """
    for name, value in (("max_ratio", max_ratio), ("min_delta_seconds", min_delta_seconds)):
        if not math.isfinite(value) or value < 0.0:
            raise ValueError(f"{name} must be a finite number >= 0: {value}")
    _check_alpha(alpha)
    _check_quantile(quantile)
    _check_bounds(le)
    _check_histogram(le, temporal, "temporal")
    _check_histogram(le, legacy, "legacy")
    level = math.log(2.0 / alpha)
    slow = _quantile_interval(quantile, le, temporal, level)
    base = _quantile_interval(quantile, le, legacy, level)
    verdict = Verdict.INCONCLUSIVE
    # The quantile lies strictly above a lower bound, so reaching the limit is breaking it.
    if slow.lower >= max_ratio * base.upper and slow.lower >= base.upper + min_delta_seconds:
        verdict = Verdict.FAIL
    elif slow.upper <= max_ratio * base.lower or slow.upper <= base.lower + min_delta_seconds:
        verdict = Verdict.PASS
    if slow.n == 0 or base.n == 0:
        verdict = Verdict.INCONCLUSIVE  # e.g. at 100% there is no legacy path to compare
    return LatencyJudgement(verdict, quantile, max_ratio, min_delta_seconds, slow, base)


def _seconds(interval: Interval) -> str:
    if interval.n == 0:
        return "no documents"
    return f"{interval.estimate:.2g}s [{interval.lower:g}, {interval.upper:g}]"


def latency_message(judgement: LatencyJudgement) -> str:
    """ "latency p99 temporal 0.12s [0.1, 0.25] vs legacy 0.05s [0.025, 0.1] after
    412/390 documents <= 2x" and the like."""
    j = judgement
    limit = f"{j.max_ratio:g}x" + (f" or +{j.min_delta_seconds:g}s" if j.min_delta_seconds else "")
    head = (
        f"latency p{j.quantile * 100:g} temporal {_seconds(j.temporal)}"
        f" vs legacy {_seconds(j.legacy)} after {j.temporal.n}/{j.legacy.n} documents"
    )
    if j.verdict == Verdict.FAIL:
        return f"{head} > {limit}"
    if j.verdict == Verdict.PASS:
        return f"{head} <= {limit}"
    return f"{head} {j.verdict.value.lower()} (limit {limit})"

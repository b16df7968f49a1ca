"""PromQL's `increase()` computed from raw samples, so the sequential judge's evidence can
be replayed at every instant without one query per instant.

The live operator asks `sum(increase(counter[<step age>s]))` (and `sum by (le)` for the
latency histograms) at each analysis; the range is the age of the current step, which in a
replay depends on the replayed decisions, so it differs at every instant and no range
query can carry it. The replay therefore reads each counter's raw samples once
(PrometheusProvider.raw_series) and computes the increase here, exactly as Prometheus's
`extrapolatedRate` does for a float counter:

- the samples inside the range; fewer than two: the series has no value;
- last - first, plus the value before every drop (a counter reset: the process restarted
  and counted from 0 again);
- extrapolated to the range's ends when the first/last sample lies within 1.1 average
  sample intervals of them, else by half an interval (the series starts or ends inside
  the range); never back past the counter's extrapolated zero.

Two details changed between Prometheus versions, and the replay follows the server it
reads (`semantics_for(version)`): Prometheus 2 takes samples in [start, end] and limits the
start at the zero point before comparing it with the threshold; Prometheus 3 takes (start,
end] and compares first (prometheus#13725, which some late 2.x releases already carry:
against those the replay may differ by a fraction of one scrape's increase, for a series
born inside the range, before the evidence is rounded to whole documents).

Each series keeps its values with the resets folded in (`adjusted`), so the increase over
any range is two binary searches, not a walk over a week of samples. For integer counts
(documents, bucket counts) every step is exact in float64; tests/unit/test_replay_promql.py
checks it against a direct transcription, and tests/integration/whatif/ against a real
Prometheus.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ingestion_operator.analysis.evidence import HISTOGRAMS
from ingestion_operator.analysis.types import Measurement
from ingestion_operator.metricproviders.prometheus_range import RawSeries


@dataclass(frozen=True)
class Semantics:
    """How a Prometheus version evaluates increase() over a range."""

    name: str
    #: The range holds samples after its start only (3.x), not at it (2.x).
    left_open: bool
    #: The 1.1-interval threshold is applied before the zero-point limit (3.x).
    threshold_first: bool


PROMETHEUS_2 = Semantics("Prometheus 2", left_open=False, threshold_first=False)
PROMETHEUS_3 = Semantics("Prometheus 3", left_open=True, threshold_first=True)


def semantics_for(version: str | None) -> Semantics:
    """The semantics of a server reporting `version` (unknown: the current, 3.x)."""
    major = (version or "").lstrip("v").split(".", 1)[0]
    return PROMETHEUS_2 if major in ("0", "1", "2") else PROMETHEUS_3


class Counter:
    """One counter's raw samples (ms timestamps), ready for increase() over any range."""

    def __init__(self, times: Sequence[int], values: Sequence[float]) -> None:
        self.times = list(times)
        self.values = list(values)
        resets = itertools.accumulate(
            (prev if curr < prev else 0.0 for prev, curr in itertools.pairwise(self.values)),
            initial=0.0,
        )
        #: Each value plus every value lost to a reset before it (the counter as if it
        #: had never restarted).
        self.adjusted = [value + reset for value, reset in zip(self.values, resets, strict=False)]

    def increase(self, start: int, end: int, semantics: Semantics) -> float | None:
        """increase() over the range from `start` to `end` (ms), as `semantics` evaluates
        it; None when fewer than two samples lie in the range (no value)."""
        times = self.times
        first = (bisect.bisect_right if semantics.left_open else bisect.bisect_left)(times, start)
        last = bisect.bisect_right(times, end) - 1
        if last - first < 1:
            return None
        result = self.adjusted[last] - self.adjusted[first]
        edges = (times[first], times[last], start, end)
        return result * _factor(result, self.values[first], edges, last - first, semantics)


def _factor(
    result: float,
    first_value: float,
    edges: tuple[int, int, int, int],
    intervals: int,
    semantics: Semantics,
) -> float:
    """Prometheus's extrapolation factor (promql/functions.go, extrapolatedRate); `edges`:
    the first and last sample's times and the range's start and end (ms)."""
    first_t, last_t, start, end = edges
    to_start = (first_t - start) / 1000
    to_end = (end - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / intervals
    threshold = average * 1.1
    to_zero = sampled * (first_value / result) if result > 0 and first_value >= 0 else math.inf
    if semantics.threshold_first:
        if to_start >= threshold:
            to_start = average / 2
        to_start = min(to_start, to_zero)
        if to_end >= threshold:
            to_end = average / 2
        return (sampled + to_start + to_end) / sampled
    to_start = min(to_start, to_zero)
    extrapolated = sampled
    extrapolated += to_start if to_start < threshold else average / 2
    extrapolated += to_end if to_end < threshold else average / 2
    return extrapolated / sampled


class EvidenceCounters:
    """The raw counters behind the sequential judge's evidence queries, answering each
    query as Prometheus would have at any instant, over any range (`measure`)."""

    def __init__(self, series: Mapping[str, Sequence[RawSeries]], semantics: Semantics) -> None:
        self.semantics = semantics
        #: query name -> [(le or None, counter)]: the group each series is summed in.
        self.groups: dict[str, list[tuple[str | None, Counter]]] = {
            name: [
                (s.labels.get("le") if name in HISTOGRAMS else None, Counter(s.times, s.values))
                for s in raw
            ]
            for name, raw in series.items()
        }

    def measure(self, at: int, seconds: int) -> dict[str, Measurement]:
        """Each query's answer at `at` (ms) over the last `seconds`: `sum(increase(...))`,
        or `sum by (le)` for a histogram, as evidence_queries words them."""
        start = at - max(1, seconds) * 1000
        return {name: self._sum(name, members, start, at) for name, members in self.groups.items()}

    def _sum(
        self, name: str, members: list[tuple[str | None, Counter]], start: int, end: int
    ) -> Measurement:
        sums: dict[str | None, float] = defaultdict(float)
        for group, counter in members:
            value = counter.increase(start, end, self.semantics)
            if value is not None:
                sums[group] += value
        if not sums:  # no series had two samples in range: PromQL's empty answer
            return Measurement(None)
        if name not in HISTOGRAMS:
            return Measurement(sums[None])
        return Measurement(buckets=tuple(sorted((float(le or "nan"), v) for le, v in sums.items())))

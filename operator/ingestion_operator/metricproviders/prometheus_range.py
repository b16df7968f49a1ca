"""Prometheus answers over a time range, in the shapes the live analysis reads: what a
replay of the operator (ingestion_operator.replay) needs from the provider.

Two kinds of reads, both pure translations here (the requests are PrometheusProvider's):

- **The windowed queries at every instant of a grid.** A range query evaluates its
  expression as an instant query at start, start + step, ... (the same engine, the same
  lookback), so each point is what the live operator's instant query would have read at
  that moment. `at_instants` turns a range query's matrix into one Measurement per
  instant through the very `to_measurement` that judges a live answer (no series: no
  data; several series: an error; a histogram: buckets). Prometheus refuses a range query
  of more than 11,000 points per series, so `windows` splits a long grid into requests.
- **Raw samples.** The sequential judge's evidence is an increase() over a range as long
  as the step's age, which differs at every instant; that cannot be one range query. So the
  counters' raw samples are read once (a range selector `selector[Ns]` in an instant
  query returns every stored sample), chunk by chunk (`chunks`), and merged per series by
  `merge_raw`; the replay computes the increases itself (replay/promql.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ingestion_operator.analysis.types import Measurement

#: Prometheus refuses a range query with more points than this per series.
MAX_RANGE_POINTS = 11_000
#: How much raw history one request reads (a day of 15 s scrapes: 5,760 samples a series).
RAW_CHUNK_SECONDS = 86_400

type Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RawSeries:
    """One series' stored samples in time order: timestamps in ms, values."""

    labels: Mapping[str, str]
    times: tuple[int, ...]
    values: tuple[float, ...]


def windows(start: int, end: int, step: int, points: int = MAX_RANGE_POINTS) -> Iterator[range]:
    """The instants start, start + step, ... <= end (unix seconds), `points` at most a
    request."""
    if step <= 0 or end < start:
        raise ValueError(f"no instants from {start} to {end} every {step}s")
    first = start
    while first <= end:
        last = min(end, first + (points - 1) * step)
        yield range(first, last + 1, step)
        first = last + step


def chunks(start: int, end: int, size: int = RAW_CHUNK_SECONDS) -> Iterator[tuple[int, int]]:
    """(from, to) pieces of [start, end] of at most `size` seconds, each ending where the
    next begins (a sample on a border is read twice and kept once)."""
    at = start
    while at < end:
        upto = min(end, at + size)
        yield at, upto
        at = upto


def at_instants(
    result: Any, times: Sequence[int], read: Callable[[list[dict[str, Any]]], Measurement]
) -> list[Measurement]:
    """A range query's matrix, as the instant query at each of `times` would have read it:
    `read` (the provider's translation of an instant answer) applied to each instant."""
    if not isinstance(result, list):
        return [Measurement(error=f"unexpected range result {result!r:.200}")] * len(times)
    vectors: dict[int, list[dict[str, Any]]] = defaultdict(list)
    try:
        for series in result:
            metric = series.get("metric") or {}
            for stamp, value in series["values"]:
                sample = {"metric": metric, "value": [stamp, value]}
                vectors[round(float(stamp) * 1000)].append(sample)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        error = Measurement(error=f"malformed range result ({exc!r}): {result!r:.200}")
        return [error] * len(times)
    return [read(vectors.get(t * 1000, [])) for t in times]


def merge_raw(answers: Sequence[Any]) -> tuple[RawSeries, ...]:
    """The matrices of several range-selector reads merged per series (a sample read twice
    is kept once), in label order. ValueError for an answer that is not a matrix."""
    samples: dict[Labels, dict[int, float]] = defaultdict(dict)
    try:
        for answer in answers:
            for series in answer:
                labels: Labels = tuple(sorted((series.get("metric") or {}).items()))
                points = samples[labels]
                for stamp, value in series["values"]:
                    points[round(float(stamp) * 1000)] = float(value)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed raw samples ({exc!r})") from exc
    merged = []
    for labels, points in sorted(samples.items()):
        times = tuple(sorted(points))
        merged.append(RawSeries(dict(labels), times, tuple(points[t] for t in times)))
    return tuple(merged)

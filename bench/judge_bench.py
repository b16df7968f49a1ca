"""Threshold judge against sequential judge on the same simulated rollout steps.

A pure simulation (no servers, seeded): Temporal-path documents arrive as a Poisson
stream at 0.2, 1, 5 and 50 documents/s (legacy carries the rest: 9x as many at the
default 10% step); each fails with the stream's error rate and takes a lognormal time
(legacy median 40 ms, Temporal times a slowdown factor), counted in Prometheus-style
buckets. The rollout analyses every --interval seconds, the first time at a uniformly
random phase after the step starts (the operator analyses every interval, whatever the
step). Both judges read the very same counts:

- threshold (today's operator): over the last --window, error rate > 0.05 or
  histogram_quantile(--quantile) ratio > 2.0 is a Fail, fewer than --min-samples
  Temporal documents in the window is Inconclusive;
- sequential (ingestion_operator.analysis.sequential, the real functions): the
  evidence since the step began, alpha --alpha per rule, quantile --seq-quantile.

Rollback on the first Fail (failureLimit 0). Promotion at the first analysis that Passes
once --step seconds have elapsed. A run ends after 3 x --step at the latest. Not
modelled (the same for both judges): scrape delay, increase() extrapolation, the other
rules (queue depth, DB errors). Medians count runs that never reach the right outcome
(promotion of a healthy step, rollback of a bad one) as never.

--buckets brief (default) are the bounds of issue 13; --buckets router the router's
contract histogram. --seq-interval 5 asks the sequential judge every 5 s (its error
bound does not depend on how often it is asked; the threshold judge stays at --interval).
First, a table of the documents each sequential rule needs to decide.

    .venv/bin/python bench/judge_bench.py [--runs 2000] [--quick] [--buckets router]
        [--seq-interval 5] [--seq-quantile 0.95] [--min-delta 0.0] [--json FILE]

`make bench` (bench/all.py) runs it with --buckets router --seq-interval 5: the
configuration README recommends for the sequential judge (judge: sequential, interval:
5s, latencyQuantile: 0.95).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ingestion_operator.analysis.sequential import error_rate_verdict, judge_latency
from ingestion_operator.analysis.types import Verdict

INF = math.inf
BUCKETS = {
    "brief": (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60),
    # the router's contract histogram (worker/ingestion_api/metrics.py)
    "router": (
        0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
        0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    ),
}  # fmt: skip
RATES = (0.2, 1.0, 5.0, 50.0)
ROLLBACK, PROMOTE, STUCK = "rollback", "promote", "stuck"
CHUNK = 250  # runs simulated at once


@dataclass(frozen=True)
class Stream:
    name: str
    error_rate: float
    slowdown: float  # Temporal latency / legacy latency, at every quantile
    healthy: bool


STREAMS = (
    Stream("healthy 0% errors", 0.0, 1.0, True),
    Stream("healthy 2% errors", 0.02, 1.0, True),
    Stream("healthy 4% errors", 0.04, 1.0, True),
    Stream("healthy 1.5x latency", 0.0, 1.5, True),
    Stream("bad 8% errors", 0.08, 1.0, False),
    Stream("bad 15% errors", 0.15, 1.0, False),
    Stream("bad 50% errors", 0.5, 1.0, False),
    Stream("bad 3x latency", 0.0, 3.0, False),
)


@dataclass(frozen=True)
class Config:
    interval: float = 30.0
    seq_interval: float = 30.0
    window: float = 120.0
    step: float = 600.0
    min_samples: int = 50
    max_error_rate: float = 0.05
    max_ratio: float = 2.0
    quantile: float = 0.99
    seq_quantile: float = 0.95
    alpha: float = 0.01
    min_delta: float = 0.0
    weight: float = 0.1  # the step's Temporal share: legacy gets (1 - w) / w as many
    median: float = 0.04
    sigma: float = 0.5
    buckets: str = "brief"

    @property
    def le(self) -> tuple[float, ...]:
        return (*BUCKETS[self.buckets], INF)


@dataclass(frozen=True)
class Counts:
    """Runs of one cell: since-step-start cumulative counts at every slice end."""

    times: np.ndarray  # (R, S) seconds since the step began, at each slice end
    first: np.ndarray  # (R,) the slice at whose end the threshold judge first analyses
    docs: np.ndarray  # (R, S) Temporal documents
    failures: np.ndarray  # (R, S)
    temporal: np.ndarray  # (R, S, B) cumulative over buckets too (last column: docs)
    legacy: np.ndarray  # (R, S, B)


@dataclass(frozen=True)
class Outcome:
    kind: str
    seconds: float
    documents: int


def bucket_probabilities(le: Sequence[float], median: float, sigma: float) -> np.ndarray:
    cdf = [0.5 * (1 + math.erf(math.log(b / median) / (sigma * math.sqrt(2)))) for b in le[:-1]]
    return np.diff(np.array([0.0, *cdf, 1.0]))


def simulate(
    config: Config, stream: Stream, rate: float, runs: int, seed: tuple[int, ...]
) -> Counts:
    """Slices [0, phase), then seq_interval long, up to 3 x step: every analysis of
    either judge and every window start of the threshold judge falls on a slice end."""
    rng = np.random.default_rng(list(seed))
    slices = int((3 * config.step) // config.seq_interval) + 1
    phase = rng.uniform(0.0, config.interval, size=runs)  # the threshold judge's first
    first = (phase // config.seq_interval).astype(int)
    lengths = np.full((runs, slices), config.seq_interval)
    lengths[:, 0] = phase - first * config.seq_interval
    legacy_rate = rate * (1 - config.weight) / config.weight
    docs = rng.poisson(rate * lengths)
    failures = rng.binomial(docs, stream.error_rate)
    slow = bucket_probabilities(config.le, config.median * stream.slowdown, config.sigma)
    base = bucket_probabilities(config.le, config.median, config.sigma)
    temporal = rng.multinomial(docs, slow)
    legacy = rng.multinomial(rng.poisson(legacy_rate * lengths), base)
    return Counts(
        times=np.cumsum(lengths, axis=1),
        first=first,
        docs=np.cumsum(docs, axis=1),
        failures=np.cumsum(failures, axis=1),
        temporal=np.cumsum(np.cumsum(temporal, axis=1), axis=2),
        legacy=np.cumsum(np.cumsum(legacy, axis=1), axis=2),
    )


def histogram_quantile(q: float, le: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Prometheus's histogram_quantile over rows of cumulative bucket counts (NaN: none)."""
    total = cumulative[:, -1].astype(float)
    rank = q * total
    j = np.minimum((cumulative < rank[:, None]).sum(axis=1), len(le) - 1)
    rows = np.arange(len(j))
    start = np.where(j > 0, le[np.maximum(j - 1, 0)], 0.0)
    below = np.where(j > 0, cumulative[rows, np.maximum(j - 1, 0)], 0)
    inside = np.maximum(cumulative[rows, j] - below, 1)
    end = np.where(np.isinf(le[j]), start, le[j])
    value = start + (end - start) * (rank - below) / inside
    value = np.where(np.isinf(le[j]), le[-2], value)
    return np.where(total > 0, value, np.nan)


def threshold_verdicts(config: Config, counts: Counts, k: np.ndarray, back: int) -> np.ndarray:
    """Today's judge at slice k[run] over the window (slices k-back+1..k): 1 Fail,
    0 Inconclusive, -1 Pass, per run."""
    rows = np.arange(len(k))

    def window(array: np.ndarray) -> np.ndarray:
        start = array[rows, np.maximum(k - back, 0)]
        return array[rows, k] - np.where((k >= back).reshape(-1, *[1] * (start.ndim - 1)), start, 0)

    docs, failures = window(counts.docs), window(counts.failures)
    le = np.array(config.le)
    slow = histogram_quantile(config.quantile, le, window(counts.temporal))
    base = histogram_quantile(config.quantile, le, window(counts.legacy))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = slow / base
        error_rate = failures / docs
    gated = docs >= config.min_samples
    fail = gated & ((error_rate > config.max_error_rate) | (ratio > config.max_ratio))
    passed = gated & ~fail & ~np.isnan(ratio)
    return np.where(fail, 1, np.where(passed, -1, 0))


def threshold_outcomes(config: Config, counts: Counts) -> list[Outcome]:
    every = round(config.interval / config.seq_interval)
    back = round(config.window / config.seq_interval)
    analyses = [counts.first + m * every for m in range(counts.docs.shape[1] // every)]
    verdicts = np.stack([threshold_verdicts(config, counts, k, back) for k in analyses], axis=1)
    at = np.stack(analyses, axis=1)
    times = np.take_along_axis(counts.times, at, axis=1)
    docs = np.take_along_axis(counts.docs, at, axis=1)
    decided = (verdicts == 1) | ((verdicts == -1) & (times >= config.step))
    decided &= times <= 3 * config.step
    first = decided.argmax(axis=1)  # the first decision (0 when none: checked below)
    return [
        Outcome(
            ROLLBACK if verdicts[run, at] == 1 else PROMOTE,
            float(times[run, at]),
            int(docs[run, at]),
        )
        if decided[run, at]
        else Outcome(STUCK, INF, 0)
        for run, at in enumerate(first)
    ]


def sequential_verdict(config: Config, counts: Counts, run: int, k: int) -> Verdict:
    """The sequential judge on everything since the step began; Fail > Inconclusive > Pass."""
    docs, failures = int(counts.docs[run, k]), int(counts.failures[run, k])
    error = error_rate_verdict(failures, docs, config.max_error_rate, config.alpha)
    if error == Verdict.FAIL:
        return error
    latency = judge_latency(
        counts.temporal[run, k].tolist(),
        counts.legacy[run, k].tolist(),
        config.le,
        max_ratio=config.max_ratio,
        quantile=config.seq_quantile,
        alpha=config.alpha,
        min_delta_seconds=config.min_delta,
    ).verdict
    if latency == Verdict.FAIL or error == latency == Verdict.PASS:
        return latency
    return Verdict.INCONCLUSIVE


def sequential_outcomes(config: Config, counts: Counts) -> list[Outcome]:
    outcomes = []
    for run in range(counts.docs.shape[0]):
        outcome = Outcome(STUCK, INF, 0)
        for k in range(counts.docs.shape[1]):
            seconds, docs = float(counts.times[run, k]), int(counts.docs[run, k])
            if seconds > 3 * config.step:
                break
            verdict = sequential_verdict(config, counts, run, k)
            if verdict == Verdict.FAIL:
                outcome = Outcome(ROLLBACK, seconds, docs)
                break
            if verdict == Verdict.PASS and seconds >= config.step:
                outcome = Outcome(PROMOTE, seconds, docs)
                break
        outcomes.append(outcome)
    return outcomes


@dataclass(frozen=True)
class Cell:
    stream: Stream
    rate: float
    threshold: list[Outcome]
    sequential: list[Outcome]


def run_cell(config: Config, stream: Stream, rate: float, runs: int, seed: tuple[int, int]) -> Cell:
    """Both judges on the same streams, CHUNK runs at a time (memory)."""
    cell = Cell(stream, rate, [], [])
    for chunk in range(0, runs, CHUNK):
        counts = simulate(config, stream, rate, min(CHUNK, runs - chunk), (*seed, chunk))
        cell.threshold.extend(threshold_outcomes(config, counts))
        cell.sequential.extend(sequential_outcomes(config, counts))
    return cell


def share(outcomes: list[Outcome], kind: str) -> float:
    return sum(o.kind == kind for o in outcomes) / len(outcomes)


def to_target(cell: Cell, outcomes: list[Outcome]) -> tuple[float, float]:
    """Median seconds and Temporal documents to the right outcome (INF: under half got there)."""
    target = PROMOTE if cell.stream.healthy else ROLLBACK
    hits = [(o.seconds, o.documents) if o.kind == target else (INF, INF) for o in outcomes]
    seconds = statistics.median(s for s, _ in hits)
    docs = statistics.median(d for _, d in hits)
    return seconds, docs


def number(value: float, digits: int = 0) -> str:
    return "never" if math.isinf(value) else f"{value:.{digits}f}"


def table(cells: list[Cell]) -> str:
    head = (
        "| stream | docs/s | rolled back % thr | seq | promoted % thr | seq "
        "| median s to right outcome thr | seq | median docs thr | seq |"
    )
    lines = [head, "|" + "---|" * 10]
    for cell in cells:
        row = [cell.stream.name, f"{cell.rate:g}"]
        for kind in (ROLLBACK, PROMOTE):
            row += [f"{100 * share(o, kind):.1f}" for o in (cell.threshold, cell.sequential)]
        targets = [to_target(cell, o) for o in (cell.threshold, cell.sequential)]
        row += [number(seconds) for seconds, _ in targets]
        row += [number(docs) for _, docs in targets]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def goal_check(config: Config, cells: list[Cell]) -> list[str]:
    healthy = [c for c in cells if c.stream.healthy]
    worst = max(share(c.sequential, ROLLBACK) for c in healthy)
    threshold = max(share(c.threshold, ROLLBACK) for c in healthy)
    lines = [
        f"sequential false-rollback rate <= alpha in every cell: "
        f"{'yes' if worst <= config.alpha else 'NO'} (worst {worst:.4f}, alpha {config.alpha}; "
        f"threshold judge worst {threshold:.4f})"
    ]
    speeds = {}
    for cell in cells:
        if cell.stream.name == "bad 15% errors" and cell.rate in (5.0, 50.0):
            speeds[cell.rate] = (
                to_target(cell, cell.threshold)[0],
                to_target(cell, cell.sequential)[0],
            )
    (t5, s5), (t50, s50) = speeds.get(5.0, (INF, INF)), speeds.get(50.0, (INF, INF))
    verdict = "yes" if s5 <= t5 and s50 < t50 else "NO"
    lines.append(
        "sequential rolls back a 15% error rate at least as fast as threshold at 5 docs/s "
        f"and faster at 50 docs/s: {verdict} (median s thr/seq: 5 docs/s {number(t5)}/"
        f"{number(s5)}, 50 docs/s {number(t50)}/{number(s50)})"
    )
    return lines


def summary(config: Config, cells: list[Cell]) -> dict[str, Any]:
    """The headline numbers, for bench/all.py's table (--json)."""
    healthy = [c for c in cells if c.stream.healthy]
    rollback = {
        f"{cell.rate:g}": [
            _finite(to_target(cell, outcomes)[0]) for outcomes in (cell.threshold, cell.sequential)
        ]
        for cell in cells
        if cell.stream.name == "bad 15% errors"
    }
    return {
        "alpha": config.alpha,
        "seq_interval": config.seq_interval,
        "worst_false_rollbacks": {
            "threshold": max(share(c.threshold, ROLLBACK) for c in healthy),
            "sequential": max(share(c.sequential, ROLLBACK) for c in healthy),
        },
        "rollback_15pct_median_s": rollback,
    }


def _finite(seconds: float) -> float | None:
    """JSON has no infinity: None for "never"."""
    return None if math.isinf(seconds) else seconds


def first_error_verdict(
    rate: float, target: Verdict, config: Config, rng: random.Random | None
) -> float:
    """Documents until the error-rate rule first gives `target`: on the expected path
    (failures = round(rate * n)) when rng is None, else on one random stream."""
    failures = 0
    for n in range(1, 200_001):
        failures = failures + (rng.random() < rate) if rng else round(rate * n)
        if error_rate_verdict(failures, n, config.max_error_rate, config.alpha) == target:
            return n
    return INF


def first_latency_verdict(q: float, slowdown: float, target: Verdict, config: Config) -> float:
    """Temporal documents until the latency rule first gives `target` on the expected
    bucket counts (legacy at the step's share), checked every 2% more documents."""
    le = config.le
    slow = np.cumsum(bucket_probabilities(le, config.median * slowdown, config.sigma))
    base = np.cumsum(bucket_probabilities(le, config.median, config.sigma))
    legacy_share = (1 - config.weight) / config.weight
    n = 10
    while n <= 1_000_000:
        judgement = judge_latency(
            [round(n * p) for p in slow],
            [round(n * legacy_share * p) for p in base],
            le,
            max_ratio=config.max_ratio,
            quantile=q,
            alpha=config.alpha,
            min_delta_seconds=config.min_delta,
        )
        if judgement.verdict == target:
            return n
        n = max(n + 1, round(n * 1.02))
    return INF


def documents_needed(config: Config, streams: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = [
        f"Documents for the sequential judge to decide (alpha {config.alpha}, "
        f"{config.buckets} buckets, legacy lognormal median {config.median}s sigma "
        f"{config.sigma}, legacy {(1 - config.weight) / config.weight:g}x the Temporal "
        f"documents, min_delta {config.min_delta}s):",
        "",
        f"| rule | stream | verdict | expected path | median of {streams} random streams |",
        "|---|---|---|---|---|",
    ]
    for rate, target in ((0.0, Verdict.PASS), (0.02, Verdict.PASS), (0.04, Verdict.PASS),
                         (0.08, Verdict.FAIL), (0.15, Verdict.FAIL)):  # fmt: skip
        expected = first_error_verdict(rate, target, config, None)
        runs = [first_error_verdict(rate, target, config, rng) for _ in range(streams)]
        row = f"error rate <= {config.max_error_rate} | {rate:.0%} true | {target.value}"
        lines.append(f"| {row} | {number(expected)} | {number(statistics.median(runs))} |")
    for q in (0.99, 0.95, 0.9):
        for slowdown, target in ((1.0, Verdict.PASS), (1.5, Verdict.PASS), (3.0, Verdict.FAIL)):
            needed = first_latency_verdict(q, slowdown, target, config)
            row = f"latency p{q * 100:g} <= {config.max_ratio:g}x | {slowdown:g}x | {target.value}"
            lines.append(f"| {row} | {number(needed)} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per cell")
    parser.add_argument("--quick", action="store_true", help="100 runs per cell")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", help="also write the headline numbers to this file")
    defaults = Config()
    for name, value in vars(defaults).items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")
    args = parser.parse_args()
    config = Config(**{name: getattr(args, name) for name in vars(defaults)})
    check(config)
    runs = 100 if args.quick else args.runs
    started = time.monotonic()
    print(documents_needed(config, 20 if args.quick else 200, args.seed), end="\n\n")
    cells = simulate_all(config, runs, args.seed, args.jobs)
    print(f"{runs} runs per cell, {config.buckets} buckets, interval {config.interval:g}s "
          f"(sequential every {config.seq_interval:g}s), window {config.window:g}s, step "
          f"{config.step:g}s (runs end at {3 * config.step:g}s), threshold p"
          f"{config.quantile * 100:g}, sequential p{config.seq_quantile * 100:g} alpha "
          f"{config.alpha} min_delta {config.min_delta:g}s:\n")  # fmt: skip
    print(table(cells), end="\n\n")
    print("\n".join(goal_check(config, cells)))
    print(f"\n({time.monotonic() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary(config, cells), allow_nan=False))


def check(config: Config) -> None:
    if config.interval % config.seq_interval or config.window % config.interval:
        raise SystemExit("--interval must be a multiple of --seq-interval, --window of --interval")
    if config.buckets not in BUCKETS:
        raise SystemExit(f"--buckets must be one of {', '.join(BUCKETS)}")


def simulate_all(config: Config, runs: int, seed: int, jobs: int) -> list[Cell]:
    """Every stream at every rate, each cell from its own seed (order-independent)."""
    grid = [(stream, rate) for stream in STREAMS for rate in RATES]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(run_cell, config, stream, rate, runs, (seed, index))
            for index, (stream, rate) in enumerate(grid)
        ]
        return [future.result() for future in futures]


if __name__ == "__main__":
    main()

"""A real Prometheus holding a known past: generated contract metrics, backfilled.

The what-if replay (`kubectl ingestionrollout replay`) reads history, so its tests and its
benchmark need a Prometheus whose past they know to the document: a healthy week, an
incident planted at a known minute, a gap, a process restart. `ContractHistory` writes
that past as OpenMetrics (the metric contract: documents per path and outcome, both
paths' latency histograms, the task-queue backlog, DB connection errors; every series
from the first scrape on, as the router exports them), deterministically: whole
documents at a steady rate, failures carried over between scrapes so a 2% error rate is
exactly 2 in 100. `HistoryPrometheus` turns the file into TSDB blocks with `promtool tsdb
create-blocks-from openmetrics` (Debian's prometheus package ships promtool) in the data
directory of a Prometheus it then starts.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingestion_contract import metrics as contract

from ingestion_sandbox.servers.common import find_binary
from ingestion_sandbox.servers.prometheus import PROMETHEUS_HINT, PrometheusServer

#: prometheus_client's default histogram buckets (what ContractTraffic exports).
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
INSTANCE = "replay-history:9464"

type AtTime = Callable[[int], float]
#: A sample's identity: family, its type, the sample's name, its labels.
type Key = tuple[str, str, str, tuple[tuple[str, str], ...]]


def _constant(value: float) -> AtTime:
    return lambda _: value


def climbing_error_rate(incident_at: int) -> AtTime:
    """1% errors until `incident_at` (unix seconds), then 0.45 points more each minute up
    to 10%: the incident the what-if tests and README's example replay."""

    def rate(t: int) -> float:
        minutes = (t - incident_at) / 60
        return 0.01 if minutes < 0 else min(0.10, 0.01 + 0.0045 * minutes)

    return rate


@dataclass
class ContractHistory:
    """The contract's series from `start` to `end` (unix seconds), one scrape every
    `scrape` seconds, shaped by functions of time. `gaps`: (from, to) spans with no
    samples (a Prometheus or target outage); `restarts`: instants at which the exporting
    process restarted (every counter back to 0)."""

    start: int
    end: int
    scrape: int = 15
    job: str = "history"
    temporal_per_second: AtTime = field(default_factory=lambda: _constant(5.0))
    legacy_per_second: AtTime = field(default_factory=lambda: _constant(45.0))
    error_rate: AtTime = field(default_factory=lambda: _constant(0.0))
    temporal_latency: AtTime = field(default_factory=lambda: _constant(0.1))
    legacy_latency: AtTime = field(default_factory=lambda: _constant(0.1))
    backlog: AtTime = field(default_factory=lambda: _constant(0.0))
    buckets: Sequence[float] = DEFAULT_BUCKETS
    gaps: Sequence[tuple[int, int]] = ()
    restarts: Sequence[int] = ()

    def scrapes(self) -> list[int]:
        """The scrape instants, outside the gaps."""
        return [
            t
            for t in range(self.start, self.end + 1, self.scrape)
            if not any(low < t < high for low, high in self.gaps)
        ]

    def lines(self) -> Iterator[str]:
        """The OpenMetrics exposition (families contiguous, samples in time order)."""
        series = self._simulate()
        families: dict[tuple[str, str], list[str]] = {}
        for (family, kind, sample, labels), values in series.items():
            rows = families.setdefault((family, kind), [])
            selector = ",".join(f'{k}="{v}"' for k, v in labels)
            rows += [f"{sample}{{{selector}}} {_number(v)} {t}" for t, v in values]
        for (family, kind), rows in families.items():
            yield f"# TYPE {family} {kind}"
            yield from rows
        yield "# EOF"

    def _simulate(self) -> dict[Key, list[tuple[int, float]]]:
        out: dict[Key, list[tuple[int, float]]] = {}
        state = _State(self.buckets)
        restarts = sorted(self.restarts)
        previous = self.start
        for t in self.scrapes():
            if restarts and restarts[0] <= t:
                restarts = [r for r in restarts if r > t]
                state = _State(self.buckets)
            else:
                state.advance(self, previous, t)
            previous = t
            for key, value in state.samples(self):
                out.setdefault(key, []).append((t, value))
        return out


class _State:
    """Counters of one exporter process since it started."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = (*buckets, math.inf)
        self.documents = {(p, o): 0 for p in contract.PATHS for o in contract.OUTCOMES}
        self.counts = {p: [0] * len(self.bounds) for p in contract.PATHS}
        self.sums = dict.fromkeys(contract.PATHS, 0.0)
        self.owed = dict.fromkeys(("temporal", "legacy", "failures"), 0.0)
        self.backlog = 0.0

    def advance(self, history: ContractHistory, since: int, now: int) -> None:
        seconds = now - since
        for path, rate, latency in (
            (contract.PATH_TEMPORAL, history.temporal_per_second, history.temporal_latency),
            (contract.PATH_LEGACY, history.legacy_per_second, history.legacy_latency),
        ):
            self.owed[path] += rate(now) * seconds
            new = int(self.owed[path])
            self.owed[path] -= new
            failed = 0
            if path == contract.PATH_TEMPORAL:
                self.owed["failures"] += new * history.error_rate(now)
                failed = min(new, int(self.owed["failures"]))
                self.owed["failures"] -= failed
            self.documents[(path, contract.OUTCOME_FAILURE)] += failed
            self.documents[(path, contract.OUTCOME_SUCCESS)] += new - failed
            took = latency(now)
            first = next(i for i, bound in enumerate(self.bounds) if took <= bound)
            for i in range(first, len(self.bounds)):
                self.counts[path][i] += new
            self.sums[path] += new * took
        self.backlog = history.backlog(now)

    def samples(self, history: ContractHistory) -> Iterator[tuple[Key, float]]:
        base = (("job", history.job), ("instance", INSTANCE))
        documents = contract.DOCUMENTS_TOTAL.removesuffix("_total")
        for (path, outcome), count in self.documents.items():
            labels = (*base, (contract.PATH_LABEL, path), (contract.OUTCOME_LABEL, outcome))
            yield (documents, "counter", contract.DOCUMENTS_TOTAL, labels), count
        histogram = contract.DURATION_SECONDS
        for path in contract.PATHS:
            with_path = (*base, (contract.PATH_LABEL, path))
            for bound, count in zip(self.bounds, self.counts[path], strict=True):
                labels = (*with_path, ("le", "+Inf" if bound == math.inf else repr(bound)))
                yield (histogram, "histogram", f"{histogram}_bucket", labels), count
            yield (histogram, "histogram", f"{histogram}_count", with_path), self.counts[path][-1]
            yield (histogram, "histogram", f"{histogram}_sum", with_path), self.sums[path]
        yield (
            (contract.TASK_QUEUE_BACKLOG, "gauge", contract.TASK_QUEUE_BACKLOG, base),
            self.backlog,
        )
        errors = contract.DB_CONNECTION_ERRORS_TOTAL
        yield (errors.removesuffix("_total"), "counter", errors, base), 0.0


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def backfill(history: ContractHistory, data_dir: Path) -> Path:
    """TSDB blocks of `history` in `data_dir` (promtool); the OpenMetrics file beside it."""
    promtool = find_binary("promtool", PROMETHEUS_HINT, extra_paths=["/usr/bin/promtool"])
    source = data_dir.parent / f"{history.job}.om"
    with open(source, "w", encoding="utf-8") as out:
        for line in history.lines():
            out.write(line + "\n")
    data_dir.mkdir(parents=True, exist_ok=True)
    # Day-long blocks: promtool reads the whole file again for every block it writes.
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet"]
    subprocess.run(
        [*command, "--max-block-duration=24h", str(source), str(data_dir)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    source.unlink()
    return data_dir


class HistoryPrometheus(PrometheusServer):
    """Prometheus serving the histories backfilled before it starts (nothing scraped)."""

    name = "prometheus-history"

    def __init__(self, histories: Sequence[ContractHistory], ready_timeout: float = 60.0) -> None:
        super().__init__(ready_timeout=ready_timeout)
        self.histories = list(histories)

    def command(self) -> list[str]:
        assert self.dir is not None
        data = self.dir / "data"
        if not data.exists():
            for history in self.histories:
                backfill(history, data)
        return [*super().command(), "--storage.tsdb.retention.time=30d"]

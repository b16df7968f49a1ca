"""What Prometheus held over a replayed range, read in a handful of requests and answered
instant by instant as the live operator's queries would have been answered.

The live operator runs, at each analysis, the rollout's windowed queries (the provider's
`queries`: error rate, latency ratio, backlog, DB errors, sample count, latency delta)
and, for the sequential judge, the evidence counted since the step began. Here:

- the windowed queries are one batched range query over the whole grid
  (PrometheusProvider.measure_range: split every 11,000 instants), so each instant reads
  exactly what an instant query at that moment reads;
- the evidence counters' raw samples are read once (PrometheusProvider.raw_series, a day
  a request) and the increase since the replayed step's start is computed per instant
  (replay/promql.py), with the semantics of the server's version.

A replay over data that is not there would be a story about nothing, so the reads are
checked: a Prometheus that does not answer, a range where the rollout's series do not
exist at all, and gaps (instants where a rule that is not optional has no data: a
scrape target down, a Prometheus outage, a range older than its retention) are errors
that name the instants, unless the caller accepts gaps (then they are replayed as the
operator would have seen them: no data, Inconclusive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ingestion_operator.analysis import RULES, Measurement
from ingestion_operator.analysis.assess import has_no_data
from ingestion_operator.metricproviders.prometheus_range import RawSeries
from ingestion_operator.replay.errors import ReplayError
from ingestion_operator.replay.promql import EvidenceCounters, Semantics, semantics_for
from ingestion_operator.spec import AnalysisSpec, Judge


class RangeProvider(Protocol):
    """What a replay needs of a metric provider (PrometheusProvider has it)."""

    url: str
    requests: int

    def queries(self, analysis: AnalysisSpec) -> dict[str, str]: ...

    def evidence_selectors(self, analysis: AnalysisSpec) -> dict[str, str]: ...

    def measure_range(
        self, queries: Mapping[str, str], start: int, end: int, step: int
    ) -> dict[str, list[Measurement]]: ...

    def raw_series(self, selector: str, start: int, end: int) -> tuple[RawSeries, ...] | str: ...

    def version(self) -> str | None: ...


@dataclass(frozen=True)
class Grid:
    """The replayed instants: start, start + step, ... <= end (unix seconds)."""

    start: int
    end: int
    step: int

    @property
    def times(self) -> range:
        return range(self.start, self.end + 1, self.step)

    def instant(self, index: int) -> datetime:
        return datetime.fromtimestamp(self.times[index], UTC)

    def instants(self) -> list[datetime]:
        return [datetime.fromtimestamp(t, UTC) for t in self.times]


@dataclass(frozen=True)
class Gap:
    """A run of instants where rules that must see had no data."""

    first: datetime
    last: datetime
    instants: int
    names: tuple[str, ...]

    def __str__(self) -> str:
        span = f"from {iso(self.first)} to {iso(self.last)} ({self.instants} instants)"
        if self.instants == 1:
            span = f"at {iso(self.first)}"
        return f"no data for {', '.join(self.names)} {span}"


@dataclass
class History:
    """The live queries' answers at every instant of `grid`."""

    grid: Grid
    windowed: Mapping[str, Sequence[Measurement]]
    evidence: EvidenceCounters | None = None
    gaps: list[Gap] = field(default_factory=list)

    def measure(self, index: int, step_age: timedelta | None) -> dict[str, Measurement]:
        """What measuring.measure returned at instant `index` for a step of `step_age`
        (the evidence only when the judge counts it and a step is in progress)."""
        found = {name: values[index] for name, values in self.windowed.items()}
        if self.evidence is not None and step_age is not None:
            at = self.grid.times[index] * 1000
            found |= self.evidence.measure(at, int(step_age.total_seconds()))
        return found


class Reader:
    """Reads histories from one provider, once per distinct set of queries (a comparison
    of two thresholds or judges reads the data once)."""

    def __init__(self, provider: RangeProvider, grid: Grid, allow_gaps: bool = False) -> None:
        self.provider = provider
        self.grid = grid
        self.allow_gaps = allow_gaps
        self._windowed: dict[tuple[tuple[str, str], ...], dict[str, list[Measurement]]] = {}
        self._counters: dict[tuple[tuple[str, str], ...], EvidenceCounters] = {}
        self._semantics: Semantics | None = None

    def history(self, analysis: AnalysisSpec) -> History:
        """The history the rollout's analysis reads; ReplayError if it cannot be read or
        has gaps (unless allowed)."""
        try:
            queries = self.provider.queries(analysis)
        except ValueError as exc:
            raise ReplayError(f"the rollout's queries cannot be built: {exc}") from exc
        windowed = self._read_windowed(queries)
        gaps = find_gaps(self.grid, windowed, analysis.optional_rules)
        self._check_gaps(gaps)
        counters = None
        if analysis.judge == Judge.SEQUENTIAL:
            counters = self._read_counters(self.provider.evidence_selectors(analysis))
        return History(self.grid, windowed, counters, gaps)

    @property
    def semantics(self) -> Semantics:
        if self._semantics is None:
            self._semantics = semantics_for(self.provider.version())
        return self._semantics

    def _read_windowed(self, queries: Mapping[str, str]) -> dict[str, list[Measurement]]:
        key = tuple(sorted(queries.items()))
        if key not in self._windowed:
            grid = self.grid
            read = self.provider.measure_range(queries, grid.start, grid.end, grid.step)
            _check_answered(read, grid)
            self._windowed[key] = read
        return self._windowed[key]

    def _read_counters(self, selectors: Mapping[str, str]) -> EvidenceCounters:
        key = tuple(sorted(selectors.items()))
        if key not in self._counters:
            series = {}
            for name, selector in selectors.items():
                # From just before the first instant: a sample on it is in a range
                # starting there under either semantics.
                raw = self.provider.raw_series(selector, self.grid.start - 1, self.grid.end)
                if isinstance(raw, str):
                    raise ReplayError(f"cannot read the evidence counters ({name}): {raw}")
                series[name] = raw
            self._counters[key] = EvidenceCounters(series, self.semantics)
        return self._counters[key]

    def _check_gaps(self, gaps: list[Gap]) -> None:
        grid = self.grid
        if sum(gap.instants for gap in gaps) == len(grid.times):
            raise ReplayError(
                f"Prometheus at {self.provider.url} has no data for this rollout's queries "
                f"from {iso(grid.instant(0))} to {iso(grid.instant(-1))}: is the range "
                "within its retention, and are the series scraped under the rollout's "
                "spec.analysis.metricLabels?"
            )
        if gaps and not self.allow_gaps:
            shown = "; ".join(str(gap) for gap in gaps[:5])
            more = f" (and {len(gaps) - 5} more gaps)" if len(gaps) > 5 else ""
            raise ReplayError(
                f"the range has gaps: {shown}{more}. The operator would have seen no data "
                "there (Inconclusive); replay a range without gaps, or pass --allow-gaps "
                "to replay them as such"
            )


def find_gaps(
    grid: Grid, windowed: Mapping[str, Sequence[Measurement]], optional: frozenset[str]
) -> list[Gap]:
    """Runs of instants where a rule that is not optional (or its floor) had no data,
    the measurements the pre-flight would refuse as missing series."""
    names = [
        name
        for rule in RULES
        if rule.name not in optional
        for name in (rule.name, *((rule.floor[1],) if rule.floor else ()))
        if name in windowed
    ]
    gaps: list[Gap] = []
    run: list[int] = []
    missing: set[str] = set()
    for index in range(len(grid.times)):
        absent = {name for name in names if has_no_data(windowed[name][index])}
        if absent:
            run.append(index)
            missing |= absent
            continue
        if run:
            gaps.append(_gap(grid, run, missing))
            run, missing = [], set()
    if run:
        gaps.append(_gap(grid, run, missing))
    return gaps


def _gap(grid: Grid, run: list[int], names: set[str]) -> Gap:
    return Gap(grid.instant(run[0]), grid.instant(run[-1]), len(run), tuple(sorted(names)))


def _check_answered(read: Mapping[str, Sequence[Measurement]], grid: Grid) -> None:
    """Every query failing at an instant is a Prometheus that did not answer (or refused
    every query): a replay of that would show only errors, so it stops with the reason."""
    for index in range(len(grid.times)):
        errors = [values[index].error for values in read.values()]
        if read and all(errors):
            slow = "no answer" in str(errors[0])
            hint = " (raise --timeout, or replay a shorter range)" if slow else ""
            raise ReplayError(f"{errors[0]}{hint}")


def iso(at: datetime) -> str:
    """An instant as RFC 3339 in UTC, to the second: 2025-06-03T14:00:00Z."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")

"""Pre-flight: before the first document moves to Temporal, every rule must be able to see.

Without it, a wrong Prometheus URL or a query that matches no series leaves every
analysis Error or Inconclusive, yet the first step (0% -> 10%) has already moved traffic
(issue 16, item 6). So before the first shift the operator runs every rule's query once
and refuses to start unless each returns data, or the user listed the rule in
spec.analysis.optionalRules.

What "data" means at 0% Temporal traffic: the series a query reads must exist, not
carry traffic. The router exports its document counters and its latency histogram for
both paths from the start (at 0), so the error rate reads 0/0 = NaN and the latency
quantiles NaN: the series exist, and that is data. An empty result means a series is
missing (a wrong metric name or label, a target not scraped) and is refused, as is a
failed query (Prometheus unreachable, bad PromQL). The rules' floor measurements (the
latency delta) are checked with their rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ingestion_operator.analysis.rules import RULES
from ingestion_operator.analysis.types import Measurement


@dataclass(frozen=True)
class Preflight:
    """The rules that cannot see, each with why; empty: the rollout may start."""

    problems: tuple[str, ...] = ()
    #: Optional rules without data (they do not block the start).
    skipped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        if self.ok:
            absent = f" (optional without data: {', '.join(self.skipped)})" if self.skipped else ""
            return "pre-flight: every rule returned data" + absent
        return (
            "pre-flight refused the start, no traffic moved: "
            + "; ".join(self.problems)
            + ". Fix the query or its target, or list the rule in spec.analysis.optionalRules"
        )


def problem(name: str, measurement: Measurement | None) -> str | None:
    """Why one query's answer is not data (None: it is)."""
    if measurement is None:
        return f"{name}: not measured"
    if measurement.error is not None:
        return f"{name}: query failed: {measurement.error}"
    if measurement.value is None and not measurement.buckets:
        return f"{name}: no data (the query matched no series: is the metric scraped?)"
    return None


def preflight(measurements: Mapping[str, Measurement], optional: frozenset[str]) -> Preflight:
    """Every rule's queries once: each must answer with data unless the rule is optional."""
    problems: list[str] = []
    skipped: list[str] = []
    for rule in RULES:
        names = (rule.name, *((rule.floor[1],) if rule.floor else ()))
        found = [p for p in (problem(n, measurements.get(n)) for n in names) if p]
        if not found:
            continue
        if rule.name in optional:
            skipped.append(rule.name)
        else:
            problems.extend(found)
    return Preflight(tuple(problems), tuple(skipped))

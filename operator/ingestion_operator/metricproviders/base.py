"""The seam between analysis and a metrics backend.

A provider owns its query language: given a rollout's analysis spec it says which query
measures each rule (`queries`) and, for the sequential judge, which queries count the
evidence since the step began (`evidence_queries`), then runs them and hands back raw
`Measurement`s (`measure`); judging them is the analysis package's job. A provider never
raises for a query that failed (unreachable server, timeout, bad PromQL): the failure
comes back as `Measurement(error=...)`, so one broken query yields an Error verdict for
its rule while the others are still judged, and the operator counts consecutive errors
instead of crashing a handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ingestion_operator.analysis.types import Measurement
from ingestion_operator.spec import AnalysisSpec


class MetricProvider(Protocol):
    def queries(self, analysis: AnalysisSpec) -> dict[str, str]:
        """The query for the sample count and for every rule of analysis.rules.RULES, the
        spec's overrides applied; ValueError when the spec's values make no query."""
        ...

    def evidence_queries(self, analysis: AnalysisSpec, seconds: int) -> dict[str, str]:
        """The queries of analysis.evidence.EVIDENCE_NAMES over the last `seconds` (the
        step's age): whole-count material for the sequential judge."""
        ...

    def measure(self, queries: Mapping[str, str]) -> dict[str, Measurement]:
        """One Measurement per query name (errors as data, never raised)."""
        ...

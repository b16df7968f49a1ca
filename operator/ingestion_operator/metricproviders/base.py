"""The seam between analysis and a metrics backend.

A provider only fetches: it runs named queries and hands back raw `Measurement`s;
judging them is `analysis.assess`'s job. A provider never raises for a query that
failed (unreachable server, timeout, bad PromQL): the failure comes back as
`Measurement(error=...)`, so one broken query yields an Error verdict for its rule
while the others are still judged, and the operator counts consecutive errors
instead of crashing a handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ingestion_operator.analysis.types import Measurement


class MetricProvider(Protocol):
    def measure(self, queries: Mapping[str, str]) -> dict[str, Measurement]:
        """One Measurement per query name (errors as data, never raised)."""
        ...

"""Metric backends by name, as a rollout's spec selects them.

A registry rather than an if-chain so a second backend (e.g. Datadog) is one entry;
an unknown kind is a ValueError naming the known ones: a misspelt provider must
stop the analysis loudly, not fall back to some default backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingestion_operator.metricproviders.base import MetricProvider
from ingestion_operator.metricproviders.prometheus import PrometheusProvider

PROVIDERS: dict[str, Callable[..., MetricProvider]] = {
    "prometheus": PrometheusProvider,
}


def make_provider(kind: str, **config: Any) -> MetricProvider:
    """A provider of `kind` built from `config` (e.g. url=..., timeout=...)."""
    factory = PROVIDERS.get(kind)
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ValueError(f"unknown metric provider {kind!r}; known: {known}")
    return factory(**config)


__all__ = ["PROVIDERS", "MetricProvider", "PrometheusProvider", "make_provider"]

"""The rollback rules, written once: each rule's name, its threshold in the CRD, and how
it is judged.

Everything else is derived from this table: `assess` judges every rule in it, the
thresholds a rollout may set are its keys (with the CRD's defaults), the status lists
its names, and a metric provider must have a query for each (the Prometheus provider
keeps its PromQL in metricproviders/prometheus_queries.py). Adding a rule is one entry
here, its query in each provider, and its threshold field in crds/ingestionrollouts.yaml
(then `python hack/gen_crd_defaults.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ingestion_contract.crd_defaults import SPEC

ERROR_RATE = "errorRate"
LATENCY_RATIO = "latencyRatio"
QUEUE_DEPTH = "queueDepth"
DB_CONNECTION_ERRORS = "dbConnectionErrorsPerMinute"
SAMPLE_COUNT = "sampleCount"  # not a rule: the Temporal-path documents behind the rates
#: Not a rule: Temporal's latency quantile minus legacy's, in seconds (the latency floor).
LATENCY_DELTA = "latencyDeltaSeconds"

#: Parameters of the latency rule: the quantile compared between the two paths, and the
#: absolute slowdown below which a ratio above its limit is not a failure (issue 12).
LATENCY_QUANTILE = "latencyQuantile"
MIN_LATENCY_DELTA = "minLatencyDeltaSeconds"


@dataclass(frozen=True)
class Rule:
    """One rollback rule: it fails when its measurement is strictly above its limit."""

    #: The name in the status, in query overrides and in messages (e.g. errorRate).
    name: str
    #: Its limit's key in spec.analysis.thresholds (e.g. maxErrorRate).
    threshold: str
    #: A rate over too few Temporal documents is noise, not evidence.
    needs_samples: bool
    #: It compares the Temporal path with the legacy one, so at 100% (no legacy traffic)
    #: it cannot be judged; see decisions.promotable.
    compares_paths: bool = False
    #: Further thresholds keys its query takes (e.g. latencyQuantile).
    parameters: tuple[str, ...] = ()
    #: An absolute floor: the threshold key of the amount (e.g. minLatencyDeltaSeconds) and
    #: the measurement compared with it (e.g. latencyDeltaSeconds). The rule fails only when
    #: its value is above its limit AND that measurement is above the floor.
    floor: tuple[str, str] | None = None
    #: A per-minute rate of a rare counter: measured over spec.analysis.counterWindow (at
    #: least 1m, see the CRD), not the sliding window, which may be a few seconds long.
    counter: bool = False


RULES: tuple[Rule, ...] = (
    Rule(ERROR_RATE, "maxErrorRate", needs_samples=True),
    Rule(
        LATENCY_RATIO,
        "maxLatencyRatio",
        needs_samples=True,
        compares_paths=True,
        parameters=(LATENCY_QUANTILE, MIN_LATENCY_DELTA),
        floor=(MIN_LATENCY_DELTA, LATENCY_DELTA),
    ),
    Rule(QUEUE_DEPTH, "maxQueueDepth", needs_samples=False),
    Rule(DB_CONNECTION_ERRORS, "maxDbConnectionErrorsPerMinute", needs_samples=False, counter=True),
)
RULES_BY_NAME: Mapping[str, Rule] = MappingProxyType({rule.name: rule for rule in RULES})
#: What a provider measures: the sample count, one value per rule, then what the rules'
#: floors are compared with.
QUERY_NAMES: tuple[str, ...] = (
    SAMPLE_COUNT,
    *RULES_BY_NAME,
    *(rule.floor[1] for rule in RULES if rule.floor),
)
#: Every key of spec.analysis.thresholds: the rules' limits and their parameters.
THRESHOLD_KEYS: tuple[str, ...] = tuple(
    key for rule in RULES for key in (rule.threshold, *rule.parameters)
)
#: Values that must lie in (0, 1] rather than just be >= 0.
_FRACTIONS = frozenset({LATENCY_QUANTILE})


def _defaults() -> dict[str, float]:
    """The CRD's defaults for every thresholds key (crd_defaults is generated from it)."""
    crd = SPEC["analysis"]["thresholds"]
    return {key: float(crd[key]) for key in THRESHOLD_KEYS}


@dataclass(frozen=True)
class Thresholds:
    """Limits of a healthy Temporal path, keyed like spec.analysis.thresholds.

    `Thresholds()` holds the CRD's defaults; `from_spec({"maxErrorRate": 0.1})` overrides
    some. Read with `limit(rule)` or `thresholds["latencyQuantile"]`.
    """

    values: Mapping[str, float] = field(default_factory=_defaults)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(THRESHOLD_KEYS))
        missing = sorted(set(THRESHOLD_KEYS) - set(self.values))
        if unknown or missing:
            raise ValueError(f"thresholds: unknown {unknown}, missing {missing}")
        for key, value in self.values.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"threshold {key} must be a finite number >= 0: {value}")
            if key in _FRACTIONS and not 0 < value <= 1:
                raise ValueError(f"{key} must be in (0, 1]: {value}")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> Thresholds:
        """The CR's camelCase `analysis.thresholds`; missing keys keep their defaults.

        An unknown key is a ValueError: a misspelt limit must not silently fall back.
        """
        spec = spec or {}
        unknown = sorted(set(spec) - set(THRESHOLD_KEYS))
        if unknown:
            raise ValueError(f"unknown thresholds {unknown}; known: {', '.join(THRESHOLD_KEYS)}")
        try:
            given = {key: float(value) for key, value in spec.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"thresholds must be numbers: {dict(spec)}") from exc
        return cls({**_defaults(), **given})

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def limit(self, rule: Rule) -> float:
        """The value above which `rule` fails."""
        return self.values[rule.threshold]

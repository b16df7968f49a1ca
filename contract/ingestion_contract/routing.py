"""The routing ConfigMap's format: its keys, and the one way to read and write a percentage.

The operator writes the Temporal percentage into a ConfigMap and every ingestion API
replica reads it. Both sides go through this module, so a value one side writes is one
the other accepts, and nothing else is: the parser is strict, because a typo must never
be read as "send everything to Temporal".
"""

from __future__ import annotations

import re
from typing import Final

from ingestion_contract.crd import DEFAULT_ROUTING_KEY

#: The key holding the percentage unless the rollout names another (spec.routing.key).
PERCENTAGE_KEY: Final = DEFAULT_ROUTING_KEY
#: Optional: "true" runs sampled documents on both paths and compares them (shadow mode).
PARALLEL_KEY: Final = "parallel"
#: Optional: the share (0..1) of parallel-eligible documents actually shadowed.
SHADOW_SAMPLE_RATE_KEY: Final = "shadowSampleRate"

MIN_PERCENTAGE: Final = 0
MAX_PERCENTAGE: Final = 100

# ASCII digits only: int() would also take "1_0" or "٣". A sign is read so that "-5" is
# reported as out of range rather than as not a number.
_INTEGER = re.compile(r"[+-]?[0-9]+")


class RoutingConfigError(ValueError):
    """The routing data is unusable; `reason` is a short label for metrics and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_percentage(raw: str, key: str = PERCENTAGE_KEY) -> int:
    """The percentage in `raw` (an integer 0..100, whitespace allowed around it).

    RoutingConfigError with reason "not_an_integer" or "out_of_range" otherwise; `key`
    only names the entry in the message.
    """
    text = str(raw).strip()
    if not _INTEGER.fullmatch(text):
        raise RoutingConfigError("not_an_integer", f"{key}={raw!r} is not an integer")
    value = int(text)
    if not MIN_PERCENTAGE <= value <= MAX_PERCENTAGE:
        raise RoutingConfigError(
            "out_of_range", f"{key}={raw!r} is outside {MIN_PERCENTAGE}..{MAX_PERCENTAGE}"
        )
    return value


def format_percentage(percentage: int) -> str:
    """The ConfigMap value for `percentage`; a value the parser would refuse is a ValueError."""
    if isinstance(percentage, bool) or not isinstance(percentage, int):
        raise ValueError(f"percentage must be an int, got {percentage!r}")
    if not MIN_PERCENTAGE <= percentage <= MAX_PERCENTAGE:
        raise ValueError(f"percentage {percentage} is outside {MIN_PERCENTAGE}..{MAX_PERCENTAGE}")
    return str(percentage)

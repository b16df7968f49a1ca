"""Which pipeline a document goes to: a pure, deterministic function of its id and a percentage.

Why a hash of the id and not a random draw: a retried or re-submitted document must
take the same path every time, and raising the percentage must only ever move
documents from legacy to Temporal, never back (a document on Temporal at p% stays on
Temporal at every q >= p%). Both follow from routing on a fixed bucket in 0..99.

The bucket is `int(md5(id).hexdigest(), 16) % 100`: md5 is not used for security here,
only because every replica (and any other language) can compute the same bucket.

The routing percentage (and the parallel/shadow knobs) live in a ConfigMap that the
operator writes; `parse_routing_data` validates it strictly, with the contract's one
percentage parser (ingestion_contract.routing), because a typo must never be read as
"send everything to Temporal".
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from ingestion_contract.routing import (
    MAX_PERCENTAGE,
    PARALLEL_KEY,
    SHADOW_SAMPLE_RATE_KEY,
    RoutingConfigError,
    parse_percentage,
)

BUCKETS = MAX_PERCENTAGE  # one bucket per percentage point: bucket < percentage goes to Temporal
_md5 = hashlib.md5

__all__ = [
    "BUCKETS",
    "RoutingConfig",
    "RoutingConfigError",
    "bucket_of",
    "parse_routing_data",
    "should_use_temporal",
]


def bucket_of(document_id: str) -> int:
    """The document's bucket in 0..99, equal to int(md5(id).hexdigest(), 16) % 100."""
    digest = _md5(document_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big") % BUCKETS  # big-endian == the hex digest's reading


def should_use_temporal(document_id: str, percentage: int) -> bool:
    """True when the document goes to the Temporal workflow at this rollout percentage."""
    # Called on every request: skip the hash where the answer cannot depend on it.
    if percentage <= 0:
        return False
    if percentage >= BUCKETS:
        return True
    digest = _md5(document_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big") % BUCKETS < percentage


@dataclass(frozen=True)
class RoutingConfig:
    """One consistent snapshot of the routing knobs; replaced as a whole, never mutated.

    percentage: share of documents (0..100) routed to Temporal.
    parallel: also run the other path for comparison (shadow mode).
    shadow_sample_rate: share (0..1) of parallel-eligible documents actually shadowed.
    """

    percentage: int = 0
    parallel: bool = False
    shadow_sample_rate: float = 1.0


def parse_routing_data(data: dict[str, str], key: str) -> RoutingConfig:
    """The RoutingConfig in a ConfigMap's data; RoutingConfigError when anything is off.

    `key` names the percentage entry (an integer 0..100, whitespace allowed around it).
    Optional entries: `parallel` ("true"/"false") and `shadowSampleRate` (a number 0..1).
    """
    if key not in data:
        raise RoutingConfigError("missing_key", f"key {key!r} is missing from the routing data")
    return RoutingConfig(
        percentage=parse_percentage(data[key], key),
        parallel=_parse_parallel(data.get(PARALLEL_KEY)),
        shadow_sample_rate=_parse_sample_rate(data.get(SHADOW_SAMPLE_RATE_KEY)),
    )


def _parse_parallel(raw: str | None) -> bool:
    if raw is None:
        return False
    text = str(raw).strip().lower()
    if text not in ("true", "false"):
        raise RoutingConfigError(
            "invalid_parallel", f"{PARALLEL_KEY}={raw!r} is neither 'true' nor 'false'"
        )
    return text == "true"


def _parse_sample_rate(raw: str | None) -> float:
    if raw is None:
        return 1.0
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = math.nan  # reported below, with the same reason as an out-of-range value
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise RoutingConfigError(
            "invalid_shadow_sample_rate",
            f"{SHADOW_SAMPLE_RATE_KEY}={raw!r} is not a number in 0..1",
        )
    return value

"""Comparing the two paths' results for the same document (shadow / parallel mode).

Only what both paths must agree on is compared: the outcome, the entity set, the
chunk count and the content hash. Timings and the path itself differ by nature.
"""

from __future__ import annotations

import hashlib

from ingestion_worker.models import IngestDocumentResult


def differing_fields(a: IngestDocumentResult, b: IngestDocumentResult) -> list[str]:
    """Names of the compared fields whose values differ (empty: the paths agree)."""
    differences = []
    if a.status != b.status:
        differences.append("status")
    if {(e.type, e.value, e.count) for e in a.entities} != {
        (e.type, e.value, e.count) for e in b.entities
    }:
        differences.append("entities")
    if a.chunk_count != b.chunk_count:
        differences.append("chunk_count")
    if a.content_hash != b.content_hash:
        differences.append("content_hash")
    return differences


def sampled(document_id: str, rate: float) -> bool:
    """Deterministic sampling: the same document is always (or never) shadowed at a rate.

    Uses a different hash than routing so the shadowed set is not the routed set.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha1(document_id.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < rate

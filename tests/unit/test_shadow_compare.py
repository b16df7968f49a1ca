"""Shadow comparison: which fields count as a disagreement between the paths."""

from __future__ import annotations

import dataclasses

from ingestion_api.shadow import differing_fields, sampled
from ingestion_worker.entities import Entity
from ingestion_worker.models import IngestDocumentResult, IngestionPath, IngestionStatus

BASE = IngestDocumentResult(
    document_id="d",
    source="s",
    path=IngestionPath.LEGACY,
    status=IngestionStatus.COMPLETED,
    content_hash="h",
    chunk_count=3,
    entities=[Entity("email", "a@b.co", 1), Entity("url", "https://x.io", 2)],
)


def test_identical_results_agree_even_across_paths_and_timings():
    other = dataclasses.replace(BASE, path=IngestionPath.TEMPORAL, entities=BASE.entities[::-1])
    assert differing_fields(BASE, other) == []


def test_each_compared_field_is_reported():
    changed = dataclasses.replace(
        BASE,
        status=IngestionStatus.FAILED,
        content_hash="other",
        chunk_count=4,
        entities=[Entity("email", "a@b.co", 2)],
    )
    assert differing_fields(BASE, changed) == ["status", "entities", "chunk_count", "content_hash"]


def test_sampling_is_deterministic_and_follows_the_rate():
    ids = [f"doc-{i}" for i in range(4000)]
    assert all(sampled(i, 1.0) for i in ids) and not any(sampled(i, 0.0) for i in ids)
    share = sum(sampled(i, 0.25) for i in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert [sampled(i, 0.25) for i in ids] == [sampled(i, 0.25) for i in ids]

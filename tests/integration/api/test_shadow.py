"""Shadow (parallel) mode: both paths run, the routed one answers, the two are compared."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_worker.chunking import chunk_text
from ingestion_worker.parsing import parse_document
from ingestion_worker.pipeline import build_pipeline
from prometheus_client import REGISTRY
from sample_documents import text_document

pytestmark = pytest.mark.asyncio


def counters() -> tuple[float, float]:
    compared = REGISTRY.get_sample_value("ingestion_shadow_comparisons_total") or 0.0
    mismatched = REGISTRY.get_sample_value("ingestion_shadow_mismatches_total") or 0.0
    return compared, mismatched


async def shadow_run(api: Any, s3: Any, bucket: str, ids: list[str]) -> tuple[float, float]:
    for document_id in ids:
        s3.put_object(
            Bucket=bucket,
            Key=f"documents/crm/{document_id}",
            Body=text_document(4_000),
            ContentType="text/plain",
        )
    before = counters()
    for document_id in ids:
        body = await api.ingest(document_id, f"documents/crm/{document_id}")
        assert body["shadow"] is True
    await api.service.drain()
    after = counters()
    return after[0] - before[0], after[1] - before[1]


async def test_identical_paths_report_no_mismatch(
    start_api: Any, s3: Any, bucket: str, worker: Any
):
    # given shadow mode at 50% with both paths running the same code and settings
    api = await start_api(StaticRoutingSource(RoutingConfig(percentage=50, parallel=True)))
    # when documents are ingested
    compared, mismatched = await shadow_run(api, s3, bucket, [f"same-{i}" for i in range(6)])
    # then each was compared, none differed, and the graph holds only the routed write
    assert (compared, mismatched) == (6, 0)
    assert worker.pipeline.graph.read_document("crm", "same-0") is not None


async def test_planted_difference_is_reported(
    start_api: Any, s3: Any, bucket: str, worker: Any, shared_graph: Any, caplog: Any
):
    # given a legacy path that chunks differently from the Temporal worker
    settings = dataclasses.replace(worker.settings, chunk_size=300, chunk_overlap=0)
    drifted = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    api = await start_api(
        StaticRoutingSource(RoutingConfig(percentage=0, parallel=True)), pipeline=drifted
    )
    # when documents are ingested in shadow mode
    compared, mismatched = await shadow_run(api, s3, bucket, ["drift-1", "drift-2"])
    # then every comparison is a mismatch, logged with the differing field
    assert (compared, mismatched) == (2, 2)
    assert any(
        "shadow mismatch" in r.message and "chunk_count" in r.message for r in caplog.records
    )
    # and only the routed (legacy) path wrote the graph: its chunking, not the shadow's
    stored = drifted.graph.read_document("crm", "drift-1")
    text = parse_document(text_document(4_000), "text/plain")
    assert len(stored["chunks"]) == len(chunk_text(text, 300, 0))

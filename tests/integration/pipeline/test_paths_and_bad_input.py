"""The legacy path against the Temporal path, idempotency, and bad input on both paths."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ingestion_worker.client import start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import IngestDocumentInput, IngestionPath, IngestionStatus
from sample_documents import FORMATS, pdf_document, text_document

pytestmark = pytest.mark.asyncio


def comparable(result: Any) -> dict[str, Any]:
    """The fields the router compares between paths."""
    fields = dataclasses.asdict(result)
    return {
        k: fields[k] for k in ("status", "content_type", "content_hash", "chunk_count", "entities")
    }


async def run_temporal(worker: Any, request: IngestDocumentInput) -> Any:
    handle = await start_ingestion(worker.client, request, worker.settings.task_queue)
    return await handle.result()


def stored_graph(graph: Any, document_id: str) -> dict[str, Any]:
    """What the graph holds for one crm document, without its id (two ids compared)."""
    stored = graph.read_document("crm", document_id)
    assert stored is not None, f"nothing stored for {document_id}"
    return {**stored, "document": {**stored["document"], "document_id": None}}


@pytest.mark.parametrize("fmt", ["pdf", "docx", "html"])
async def test_legacy_and_temporal_build_the_same_graph(
    worker: Any, s3: Any, bucket: str, fmt: str
):
    # given one document
    extension, body, declared = FORMATS[fmt]
    s3.put_object(Bucket=bucket, Key=f"same{extension}", Body=body, ContentType=declared or "")
    # when the legacy path ingests it under one id and Temporal under another (two ids, not
    # two databases: FalkorDB's Bolt port maps every database name to one graph)
    legacy = ingest_legacy(
        IngestDocumentInput("same-legacy", "crm", key=f"same{extension}"), worker.pipeline
    )
    temporal = await run_temporal(
        worker, IngestDocumentInput("same-temporal", "crm", key=f"same{extension}")
    )
    # then the results agree field by field and the two stored graphs are identical
    assert legacy.path == IngestionPath.LEGACY and temporal.path == IngestionPath.TEMPORAL
    assert comparable(legacy) == comparable(temporal)
    graph = worker.pipeline.graph
    legacy_stored = stored_graph(graph, "same-legacy")
    assert legacy_stored["chunks"] and legacy_stored["mentions"]
    assert legacy_stored == stored_graph(graph, "same-temporal")


async def test_ingesting_twice_leaves_the_same_graph(worker: Any, s3: Any, bucket: str):
    # given a 10 KB document ingested once
    s3.put_object(Bucket=bucket, Key="twice.txt", Body=text_document(10_000))
    request = IngestDocumentInput("twice", "crm", key="twice.txt")
    first = await run_temporal(worker, request)
    before = worker.pipeline.graph.read_document("crm", "twice")
    # when it is ingested again, once through each path
    again = await run_temporal(worker, request)
    legacy = ingest_legacy(request, worker.pipeline)
    # then nothing was duplicated
    assert first.status == again.status == legacy.status == IngestionStatus.COMPLETED
    assert worker.pipeline.graph.read_document("crm", "twice") == before
    assert len(before["chunks"]) == first.chunk_count > 5


async def test_changed_document_replaces_stale_chunks_and_mentions(
    worker: Any, s3: Any, bucket: str
):
    # given a long document with entities, ingested
    s3.put_object(Bucket=bucket, Key="v.txt", Body=text_document(6_000))
    request = IngestDocumentInput("v", "crm", key="v.txt")
    await run_temporal(worker, request)
    # when it is replaced by a short one without them
    s3.put_object(Bucket=bucket, Key="v.txt", Body=b"Short note without contacts.")
    result = await run_temporal(worker, request)
    # then the graph holds only the new content
    stored = worker.pipeline.graph.read_document("crm", "v")
    assert result.chunk_count == 1 and len(stored["chunks"]) == 1
    assert stored["mentions"] == []


def _bad_inputs(bucket: str) -> dict[str, tuple[str | None, str, bytes, str]]:
    # name: (bucket override, key, body, expected error type)
    return {
        "empty": (None, "empty.txt", b"", "ValidationError"),
        "corrupt_pdf": (None, "corrupt.pdf", b"%PDF-1.7\n garbage \x00\x01", "ValidationError"),
        "unknown_extension": (None, "data.xyz", b"\x00\x01binary", "UnsupportedFormatError"),
        "missing_bucket": ("no-such-bucket-here", "a.txt", b"", "DocumentNotFoundError"),
        "huge": (None, "huge.pdf", pdf_document(pages=1, image_bytes=600_000), "ValidationError"),
    }


@pytest.mark.worker_settings(max_document_bytes=500_000)
@pytest.mark.parametrize(
    "case", ["empty", "corrupt_pdf", "unknown_extension", "missing_bucket", "huge"]
)
async def test_bad_input_gets_a_clear_error_and_no_graph(
    worker: Any, s3: Any, bucket: str, case: str
):
    # given a bad input (the huge one exceeds MAX_DOCUMENT_BYTES)
    bucket_override, key, body, expected = _bad_inputs(bucket)[case]
    if bucket_override is None:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/octet-stream")
    # when either path ingests it
    temporal = await run_temporal(
        worker, IngestDocumentInput(f"t-{case}", "crm", bucket=bucket_override, key=key)
    )
    legacy = ingest_legacy(
        IngestDocumentInput(f"l-{case}", "crm", bucket=bucket_override, key=key),
        worker.pipeline,
        sleep=lambda _: None,
    )
    # then both name the same error, say what is wrong, and wrote nothing
    for result in (temporal, legacy):
        assert result.status == IngestionStatus.FAILED
        assert result.error_type == expected, result.error_message
        assert key in (result.error_message or "") or case in ("empty", "corrupt_pdf")
    assert worker.pipeline.graph.read_document("crm", f"t-{case}") is None
    assert worker.pipeline.graph.read_document("crm", f"l-{case}") is None


async def test_invalid_identifiers_are_rejected_before_any_work(worker: Any):
    # given a document id with a path separator; when submitted either way
    legacy = ingest_legacy(IngestDocumentInput("../etc/passwd", "crm"), worker.pipeline)
    with pytest.raises(Exception) as raised:
        await run_temporal(worker, IngestDocumentInput("../etc/passwd", "crm"))
    # then both refuse it as a ValidationError
    assert legacy.error_type == "ValidationError"
    assert "invalid document_id" in str(raised.value)

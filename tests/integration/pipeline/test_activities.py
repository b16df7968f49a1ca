"""Activities one by one, against moto S3, FalkorDB's Bolt port and the embeddings server."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from ingestion_sandbox.servers.services import free_port
from ingestion_worker.activities import IngestionActivities
from ingestion_worker.codec import decode_chunks
from ingestion_worker.entities import Entity
from ingestion_worker.metrics import DB_CONNECTION_ERRORS
from ingestion_worker.models import (
    Blob,
    CleanupInput,
    DocumentState,
    DownloadResult,
    IngestDocumentInput,
)
from ingestion_worker.pipeline import build_pipeline
from sample_documents import pdf_document, text_document
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment


def run(fn: Any, arg: Any, heartbeats: list[Any] | None = None) -> Any:
    env = ActivityEnvironment()
    if heartbeats is not None:
        env.on_heartbeat = lambda *details: heartbeats.append(details)
    return env.run(fn, arg)


def document(document_id: str, key: str | None = None, prefix: str = "t") -> DocumentState:
    """The state a workflow starts from: the request, and where its artifacts go."""
    return DocumentState(IngestDocumentInput(document_id, "crm", key=key), artifact_prefix=prefix)


def test_small_download_travels_inline_with_type_from_extension(
    pipeline: Any, s3: Any, bucket: str
):
    # given a small Markdown object stored without a content type
    s3.put_object(Bucket=bucket, Key="documents/crm/n1", Body=b"# Title\n\nbody")
    s3.put_object(Bucket=bucket, Key="notes/n1.md", Body=b"# Title\n\nbody")
    activities = IngestionActivities(pipeline)
    # when downloaded by explicit key
    result = run(activities.step("download"), document("n1", key="notes/n1.md"))
    # then the bytes come inline, hashed, typed from the extension
    assert result.download.content_type == "text/markdown"
    assert base64.b64decode(result.content.inline) == b"# Title\n\nbody"
    assert result.download.size == 13 and len(result.download.sha256) == 64


def test_large_download_heartbeats_and_travels_by_reference(
    make_settings: Any, shared_graph: Any, s3: Any, bucket: str
):
    # given a 5 MB PDF and a 1 MB inline limit
    settings = make_settings(inline_limit_bytes=1024 * 1024)
    pipeline = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    body = pdf_document(pages=2, image_bytes=5 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="documents/crm/big", Body=body, ContentType="application/pdf")
    heartbeats: list[Any] = []
    # when downloaded by the default key
    result = run(IngestionActivities(pipeline).step("download"), document("big"), heartbeats)
    # then it heartbeated its progress and passes a reference to the object, not the bytes
    assert len(heartbeats) >= 5
    assert heartbeats[-1] == (len(body),)
    assert result.content.inline is None
    assert (result.content.bucket, result.content.key) == (bucket, "documents/crm/big")
    # and parse reads it back by that reference, then drops it: no later step needs it
    parsed = run(IngestionActivities(pipeline).step("parse"), result)
    assert parsed.char_count > 100
    assert parsed.content is None


def test_big_text_and_chunks_spill_to_the_artifact_bucket(
    make_settings: Any, shared_graph: Any, s3: Any, bucket: str
):
    # given a 40 KB text and an 8 KB inline limit
    settings = make_settings(inline_limit_bytes=8 * 1024)
    pipeline = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    s3.put_object(
        Bucket=bucket, Key="documents/crm/t", Body=text_document(40_000), ContentType="text/plain"
    )
    activities = IngestionActivities(pipeline)
    downloaded = run(activities.step("download"), document("t", prefix="crm/t/run1"))
    # when parsed and embedded
    parsed = run(activities.step("parse"), downloaded)
    embedded = run(activities.step("embed"), parsed)
    # then text and vectors went to the artifact bucket and decode intact
    assert parsed.text.key == "crm/t/run1/text"
    assert embedded.chunks.key == "crm/t/run1/chunks.json"
    assert embedded.text is None  # no later step reads it: it leaves the payload
    chunks = decode_chunks(pipeline.store.read_blob_text(embedded.chunks))
    assert len(chunks) == embedded.chunk_count > 30
    assert all(len(c.embedding) == settings.embedding_dimensions for c in chunks)
    # and cleanup removes exactly those artifacts
    assert run(activities.cleanup, _cleanup(parsed.text, embedded.chunks)) == 2
    listed = s3.list_objects_v2(Bucket=settings.artifact_bucket).get("KeyCount", 0)
    assert listed == 0


def _cleanup(*blobs: Blob) -> CleanupInput:
    return CleanupInput(list(blobs))


def test_the_inline_group_runs_every_step_for_a_small_document(pipeline: Any, s3: Any, bucket: str):
    # given a 3 KB text, under the default INLINE_DOCUMENT_BYTES
    s3.put_object(
        Bucket=bucket, Key="documents/crm/s", Body=text_document(3_000), ContentType="text/plain"
    )
    # when the inline activity runs
    result = run(IngestionActivities(pipeline).inline, document("s"))
    # then it ran the four steps and returns what the graph write reads, and no more
    assert result.completed == 4
    assert [t.step for t in result.timings] == ["download", "parse", "extract_entities", "embed"]
    assert result.state.chunks is not None and result.state.chunk_count >= 1
    assert result.state.content is None and result.state.text is None
    assert result.state.entities and result.spilled == []


def test_the_inline_group_leaves_a_larger_document_to_the_chain(
    make_settings: Any, shared_graph: Any, s3: Any, bucket: str
):
    # given a 3 KB text and a 1 KB INLINE_DOCUMENT_BYTES
    settings = make_settings(inline_document_bytes=1_000)
    pipeline = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    s3.put_object(Bucket=bucket, Key="documents/crm/l", Body=text_document(3_000))
    # when the inline activity runs; then it ran nothing and changed nothing
    result = run(IngestionActivities(pipeline).inline, document("l"))
    assert (result.completed, result.timings, result.spilled) == (0, [], [])
    assert result.state == document("l")


def test_unreachable_s3_is_transient_not_missing(make_settings: Any, shared_graph: Any):
    # given S3 on a port where nothing listens
    settings = make_settings(s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    pipeline = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    # when downloading; then the error is retryable and says why
    with pytest.raises(ApplicationError) as raised:
        run(IngestionActivities(pipeline).step("download"), document("x"))
    assert raised.value.type == "TransientStorageError"
    assert raised.value.non_retryable is False


def test_unreachable_neo4j_is_retryable_and_counted(make_settings: Any, s3: Any, bucket: str):
    # given Neo4j on a port where nothing listens
    settings = make_settings(
        neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_connection_timeout_seconds=0.5
    )
    pipeline = build_pipeline(settings)
    before = DB_CONNECTION_ERRORS.labels("neo4j")._value.get()
    request = DocumentState(
        IngestDocumentInput("w", "crm"),
        artifact_prefix="t",
        download=DownloadResult("b", "k", "text/plain", 0, "s"),
        content_hash="h",
        entities=[Entity("email", "a@b.co", 1)],
        chunks=_empty_chunks(),
    )
    # when writing; then the failure is retryable and the counter moved
    with pytest.raises(ApplicationError) as raised:
        run(IngestionActivities(pipeline).step("write_graph"), request)
    assert raised.value.type == "GraphUnavailableError" and not raised.value.non_retryable
    assert DB_CONNECTION_ERRORS.labels("neo4j")._value.get() > before
    pipeline.close()


def _empty_chunks() -> Blob:
    return Blob(inline="[]", size=2)

"""DocumentIngestionWorkflow on the real Temporal dev server, with real S3, Bolt and embeddings.

Tests that take `shape` run in both workflow shapes (conftest.py): the inline group as one
local activity, and the chain of activities.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.workflows import DocumentIngestionWorkflow
from pipeline_shapes import activity_attempts, both_shapes
from sample_documents import FORMATS, pdf_document

pytestmark = pytest.mark.asyncio


def put(s3: Any, bucket: str, key: str, body: bytes, content_type: str = "") -> None:
    extra = {"ContentType": content_type} if content_type else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)


async def ingest(worker: Any, document_id: str, key: str, source: str = "crm") -> Any:
    handle = await start_ingestion(
        worker.client, IngestDocumentInput(document_id, source, key=key), worker.settings.task_queue
    )
    return await handle.result()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_each_format_ingests_into_the_graph(worker: Any, s3: Any, bucket: str, fmt: str):
    # given a document of this format in S3
    extension, body, declared = FORMATS[fmt]
    put(s3, bucket, f"in/doc{extension}", body, declared)
    # when the workflow ingests it
    result = await ingest(worker, f"doc-{fmt}", f"in/doc{extension}")
    # then it completes with the entities of the text and the graph holds it
    assert result.status == IngestionStatus.COMPLETED, result.error_message
    found = {(e.type, e.value) for e in result.entities}
    assert ("email", "jane.doe@example.com") in found
    assert ("order_id", "ORD-12345") in found
    graph = worker.pipeline.graph.read_document("crm", f"doc-{fmt}")
    assert graph is not None
    assert len(graph["chunks"]) == result.chunk_count >= 1
    assert graph["document"]["content_hash"] == result.content_hash
    assert graph["mentions"] == sorted((e.type, e.value, e.count) for e in result.entities)


@both_shapes
async def test_missing_document_fails_fast_without_retries(worker: Any, bucket: str, shape: str):
    # given no object at the key; when ingested
    document_id = f"missing-{uuid.uuid4().hex[:6]}"
    handle = await start_ingestion(
        worker.client,
        IngestDocumentInput(document_id, "crm", key="nowhere.txt"),
        worker.settings.task_queue,
    )
    result = await handle.result()
    # then the result names the permanent error and the download ran exactly once
    assert result.status == IngestionStatus.FAILED
    assert result.error_type == "DocumentNotFoundError"
    assert "nowhere.txt" in (result.error_message or "")
    downloads = {"inline": ["run_inline_steps"], "chain": ["run_inline_steps", "download_document"]}
    assert await activity_attempts(handle) == downloads[shape]
    assert worker.pipeline.graph.read_document("crm", document_id) is None


async def test_duplicate_request_attaches_to_the_running_workflow(
    worker: Any, s3: Any, bucket: str
):
    # given a document; when the same document is requested twice at once
    put(s3, bucket, "dup.txt", FORMATS["txt"][1], "text/plain")
    request = IngestDocumentInput("dup-1", "crm", key="dup.txt")
    first, second = await asyncio.gather(
        start_ingestion(worker.client, request, worker.settings.task_queue),
        start_ingestion(worker.client, request, worker.settings.task_queue),
    )
    # then both handles point at one run
    assert first.id == second.id
    assert first.result_run_id == second.result_run_id
    assert (await first.result()).status == IngestionStatus.COMPLETED


async def test_large_pdf_ingests_by_reference(worker: Any, s3: Any, bucket: str):
    # given a 20 MB PDF: ten times Temporal's default payload limit
    body = pdf_document(pages=3, image_bytes=21 * 1024 * 1024)
    assert len(body) > 20 * 1024 * 1024
    put(s3, bucket, "big.pdf", body, "application/pdf")
    # when ingested on the Temporal path
    handle = await start_ingestion(
        worker.client, IngestDocumentInput("big", "crm", key="big.pdf"), worker.settings.task_queue
    )
    result = await handle.result()
    # then it completes, and no payload in the history came near the limit
    assert result.status == IngestionStatus.COMPLETED, result.error_message
    assert result.chunk_count >= 1
    largest = 0
    async for event in handle.fetch_history_events():
        largest = max(largest, event.ByteSize())
    assert largest < 512 * 1024
    # and, larger than the inline group takes, it ran as the chain of activities
    attempts = await activity_attempts(handle)
    assert attempts[:3] == ["run_inline_steps", "download_document", "parse_document"]


@both_shapes
@pytest.mark.worker_settings(fault_delay_seconds=1.0)
async def test_status_query_follows_the_steps(worker: Any, s3: Any, bucket: str, shape: str):
    # given a slow write step, so the workflow lingers before completing
    put(s3, bucket, "slow.txt", FORMATS["txt"][1], "text/plain")
    handle = await start_ingestion(
        worker.client,
        IngestDocumentInput("slow", "crm", key="slow.txt"),
        worker.settings.task_queue,
    )
    seen: list[IngestionStatus] = []
    while True:
        view = await handle.query(DocumentIngestionWorkflow.get_status)
        if not seen or seen[-1] != view.status:
            seen.append(view.status)
        if view.status in (IngestionStatus.COMPLETED, IngestionStatus.FAILED):
            break
        await asyncio.sleep(0.005)
    # then every status seen is in pipeline order and it ends completed
    order = list(IngestionStatus)
    assert seen == sorted(seen, key=order.index)
    assert seen[-1] == IngestionStatus.COMPLETED
    assert IngestionStatus.EMBEDDINGS_GENERATED in seen
    assert view.document_id == "slow"
    assert [t.step for t in view.timings][:2] == ["download", "parse"]


@both_shapes
@pytest.mark.worker_settings(fault_failure_rate=1.0)
async def test_an_injected_fault_fails_the_graph_write_once_and_writes_nothing(
    worker: Any, s3: Any, bucket: str, shape: str
):
    # given a worker whose fault setting fails every graph write (the fault interceptor)
    put(s3, bucket, "f.txt", FORMATS["txt"][1], "text/plain")
    handle = await start_ingestion(
        worker.client, IngestDocumentInput("f", "crm", key="f.txt"), worker.settings.task_queue
    )
    # when the workflow runs
    result = await handle.result()
    # then it fails with the injected error, every activity ran once (the fault is not
    # retried), and the graph holds nothing
    assert (result.status, result.error_type) == (IngestionStatus.FAILED, "InjectedFaultError")
    attempts = await activity_attempts(handle)
    assert attempts[-1] == "write_graph"
    assert len(attempts) == len(set(attempts)) == {"inline": 2, "chain": 6}[shape]
    assert worker.pipeline.graph.read_document("crm", "f") is None

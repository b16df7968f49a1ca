"""DocumentIngestionWorkflow on Temporal's time-skipping test server, with a real
OpenAI-compatible embeddings server that answers 429 on demand."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from ingestion_sandbox.servers.services import test_server_path
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.worker import build_worker
from ingestion_worker.workflows import DocumentIngestionWorkflow
from sample_documents import text_document
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path()
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def api_worker(
    time_skipping_env: WorkflowEnvironment, settings: Any, shared_graph: Any, embeddings_server: Any
) -> AsyncIterator[Any]:
    """A worker whose embeddings come from the local OpenAI-compatible server."""
    embeddings_server.reset()
    api_settings = dataclasses.replace(
        settings, openai_api_key="test-key", openai_base_url=embeddings_server.base_url
    )
    pipeline = build_pipeline(api_settings, shared_graph.for_database(settings.neo4j_database))
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(time_skipping_env.client, api_settings, pipeline, executor):
            yield pipeline
    embeddings_server.reset()


async def run(env: WorkflowEnvironment, settings: Any, document_id: str, key: str) -> Any:
    return await env.client.execute_workflow(
        DocumentIngestionWorkflow.run,
        IngestDocumentInput(document_id, "crm", key=key),
        id=f"ts-{uuid.uuid4().hex}",
        task_queue=settings.task_queue,
    )


async def test_ingests_a_document(
    time_skipping_env: WorkflowEnvironment, api_worker: Any, settings: Any, s3: Any, bucket: str
):
    # given a 10 KB text; when ingested through the time-skipping server
    s3.put_object(Bucket=bucket, Key="a.txt", Body=text_document(10_000))
    result = await run(time_skipping_env, settings, "a", "a.txt")
    # then it completes with API embeddings written to the graph
    assert result.status == IngestionStatus.COMPLETED
    stored = api_worker.graph.read_document("crm", "a")
    assert len(stored["chunks"]) == result.chunk_count
    assert len(stored["chunks"][0]["embedding"]) == settings.embedding_dimensions


async def test_embeddings_succeed_after_rate_limits_within_five_attempts(
    time_skipping_env: WorkflowEnvironment,
    api_worker: Any,
    settings: Any,
    s3: Any,
    bucket: str,
    embeddings_server: Any,
):
    # given an embeddings API that answers 429 four times
    s3.put_object(Bucket=bucket, Key="b.txt", Body=text_document(2_000))
    embeddings_server.fail_next(4, status=429)
    # when the document is ingested
    result = await run(time_skipping_env, settings, "b", "b.txt")
    # then the fifth attempt succeeds
    assert result.status == IngestionStatus.COMPLETED, result.error_message
    assert embeddings_server.request_count == 5


async def test_embeddings_give_up_after_five_attempts(
    time_skipping_env: WorkflowEnvironment,
    api_worker: Any,
    settings: Any,
    s3: Any,
    bucket: str,
    embeddings_server: Any,
):
    # given an embeddings API that keeps failing with 503
    s3.put_object(Bucket=bucket, Key="c.txt", Body=text_document(2_000))
    embeddings_server.fail_next(50, status=503)
    # when the document is ingested
    result = await run(time_skipping_env, settings, "c", "c.txt")
    # then it fails after exactly five attempts, naming the error, with no graph
    assert result.status == IngestionStatus.FAILED
    assert result.error_type == "EmbeddingError"
    assert "503" in (result.error_message or "")
    assert embeddings_server.request_count == 5
    assert api_worker.graph.read_document("crm", "c") is None


async def test_rejected_embeddings_request_is_not_retried(
    time_skipping_env: WorkflowEnvironment,
    api_worker: Any,
    settings: Any,
    s3: Any,
    bucket: str,
    embeddings_server: Any,
):
    # given an embeddings API that rejects the key (401)
    s3.put_object(Bucket=bucket, Key="d.txt", Body=text_document(2_000))
    embeddings_server.fail_next(50, status=401)
    # when ingested; then one attempt, a permanent error
    result = await run(time_skipping_env, settings, "d", "d.txt")
    assert result.error_type == "EmbeddingRejectedError"
    assert embeddings_server.request_count == 1

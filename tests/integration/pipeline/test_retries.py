"""Retry budgets on both paths: an S3 that does not answer is retried for S3_RETRY_SECONDS
(here shortened to about a second), the status says "retrying: <reason>" meanwhile, and
the document fails with the transient error once the budget is spent, never sooner."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ingestion_sandbox.servers.services import free_port
from ingestion_worker.client import ingestion_status, start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from pipeline_shapes import activity_attempts, both_shapes
from temporalio.service import RPCError

BUDGET = 1.5
DEAD_S3 = {"s3_endpoint_url": f"http://127.0.0.1:{free_port()}", "s3_retry_seconds": BUDGET}


@pytest.mark.worker_settings(**DEAD_S3)
def test_legacy_retries_an_s3_outage_for_its_budget_then_fails(pipeline: Any) -> None:
    # given S3 where nothing listens, and a 1.5 s budget
    seen: list[str] = []
    waited: list[float] = []
    # when the legacy path ingests a document
    result = ingest_legacy(
        IngestDocumentInput("r", "crm"), pipeline, on_status=seen.append, sleep=waited.append
    )
    # then it failed with the transient error after waiting out the budget, saying so
    assert (result.status, result.error_type) == (IngestionStatus.FAILED, "TransientStorageError")
    retries = [s for s in seen if s.startswith("retrying: TransientStorageError: s3://")]
    assert len(retries) == len(waited) > 2  # the budget, not download's 3 attempts, ended it
    assert seen[-1] == IngestionStatus.FAILED


@pytest.mark.asyncio
@both_shapes
@pytest.mark.worker_settings(**DEAD_S3)
async def test_a_workflow_retries_an_s3_outage_for_its_budget_then_fails(
    worker: Any, shape: str
) -> None:
    # given S3 where nothing listens, and a 1.5 s budget; when a document is ingested
    request = IngestDocumentInput(f"r-{shape}", "crm")
    handle = await start_ingestion(worker.client, request, worker.settings.task_queue)
    # then its status says why it waits, while it waits
    retrying = await _first_retrying(worker.client, request)
    assert retrying.startswith("retrying: TransientStorageError: s3://")
    # and it fails with the transient error once the budget is spent, after several tries
    result = await handle.result()
    assert (result.status, result.error_type) == (IngestionStatus.FAILED, "TransientStorageError")
    download = {"inline": "run_inline_steps", "chain": "download_document"}[shape]
    assert (await activity_attempts(handle)).count(download) >= 3
    view = await ingestion_status(worker.client, "crm", request.document_id)
    assert view.retrying is None and view.display == "failed"


async def _first_retrying(client: Any, request: IngestDocumentInput) -> str:
    for _ in range(200):
        try:
            view = await ingestion_status(client, request.source, request.document_id)
        except RPCError:  # not started yet
            view = None
        if view is not None and view.retrying:
            return str(view.retrying)
        await asyncio.sleep(0.02)
    raise AssertionError("the status never said it was retrying")

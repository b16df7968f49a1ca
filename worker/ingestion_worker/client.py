"""Starting and watching ingestions from outside the worker (API, CLI, examples, tests)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from ingestion_worker.models import (
    IngestDocumentInput,
    IngestDocumentResult,
    IngestionStatusView,
    validate_identifiers,
    workflow_id_for,
)
from ingestion_worker.workflows import DocumentIngestionWorkflow


async def start_ingestion(
    client: Client, request: IngestDocumentInput, task_queue: str, workflow_id: str | None = None
) -> WorkflowHandle[DocumentIngestionWorkflow, IngestDocumentResult]:
    """Start (or attach to the running) ingestion of one document; ids are validated first."""
    validate_identifiers(request.document_id, request.source)
    return await client.start_workflow(
        DocumentIngestionWorkflow.run,
        request,
        id=workflow_id or workflow_id_for(request.source, request.document_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        request_eager_start=True,
    )


async def ingestion_status(client: Client, source: str, document_id: str) -> IngestionStatusView:
    handle = client.get_workflow_handle(workflow_id_for(source, document_id))
    return await handle.query(DocumentIngestionWorkflow.get_status)

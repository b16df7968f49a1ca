"""DocumentIngestionWorkflow: download -> parse -> extract entities -> embed -> write.

Deterministic orchestration only: the steps run as activities with per-step
retry policies, the status is queryable at any time, and every failure ends in
a structured result (status "failed", error type and message) rather than a
bare workflow failure, so callers and the router handle both paths alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from ingestion_worker.activities import IngestionActivities
    from ingestion_worker.errors import PERMANENT_ERRORS, ValidationError
    from ingestion_worker.models import (
        Blob,
        CleanupInput,
        DownloadInput,
        EmbedInput,
        ExtractEntitiesInput,
        IngestDocumentInput,
        IngestDocumentResult,
        IngestionPath,
        IngestionStatus,
        IngestionStatusView,
        ParseInput,
        StepTiming,
        WriteGraphInput,
        validate_identifiers,
    )

NON_RETRYABLE = [cls.__name__ for cls in PERMANENT_ERRORS] + [
    "EmbeddingRejectedError",
    "InjectedFaultError",
]


@dataclass(frozen=True)
class StepOptions:
    attempts: int
    timeout: timedelta
    local: bool = False  # CPU-only steps skip the server round trip
    heartbeat: timedelta | None = None
    initial_interval: timedelta = timedelta(seconds=1)
    max_interval: timedelta = timedelta(seconds=10)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            maximum_attempts=self.attempts,
            initial_interval=self.initial_interval,
            backoff_coefficient=2.0,
            maximum_interval=self.max_interval,
            non_retryable_error_types=NON_RETRYABLE,
        )


STEPS: dict[str, StepOptions] = {
    "download": StepOptions(3, timedelta(minutes=5), heartbeat=timedelta(seconds=30)),
    "parse": StepOptions(3, timedelta(minutes=5), local=True),
    "extract_entities": StepOptions(3, timedelta(minutes=2), local=True),
    # Rate limits are transient: more attempts, quick first retry.
    "embed": StepOptions(
        5, timedelta(minutes=5), local=True, initial_interval=timedelta(seconds=0.5)
    ),
    "write_graph": StepOptions(3, timedelta(minutes=5), heartbeat=timedelta(seconds=10)),
}


@workflow.defn(name="DocumentIngestionWorkflow")
class DocumentIngestionWorkflow:
    def __init__(self) -> None:
        self._status = IngestionStatus.PENDING
        self._document_id = ""
        self._source = ""
        self._error_type: str | None = None
        self._error_message: str | None = None
        self._timings: list[StepTiming] = []

    @workflow.query(name="get_status")
    def get_status(self) -> IngestionStatusView:
        return IngestionStatusView(
            status=self._status,
            document_id=self._document_id,
            source=self._source,
            error_type=self._error_type,
            error_message=self._error_message,
            timings=list(self._timings),
        )

    @workflow.run
    async def run(self, request: IngestDocumentInput) -> IngestDocumentResult:
        self._document_id, self._source = request.document_id, request.source
        artifacts: list[Blob] = []
        try:
            result = await self._ingest(request, artifacts)
        except FailureError as err:  # activity errors; local ones arrive unwrapped
            failure = err.cause if isinstance(err, ActivityError) and err.cause else err
            if isinstance(failure, ApplicationError):
                return self._failed(request, failure.type or "ApplicationError", failure.message)
            return self._failed(request, type(failure).__name__, str(failure))
        except ValidationError as err:
            return self._failed(request, "ValidationError", str(err))
        finally:
            await self._cleanup(artifacts)
        return result

    async def _cleanup(self, artifacts: list[Blob]) -> None:
        """Best effort: drop spilled artifacts; a bucket lifecycle rule catches any left."""
        stored = [b for b in artifacts if b.is_reference]
        if not stored:
            return
        try:
            await self._step("cleanup", IngestionActivities.cleanup, CleanupInput(stored))
        except ActivityError as err:
            workflow.logger.warning("artifact cleanup failed: %s", err)

    async def _ingest(
        self, request: IngestDocumentInput, artifacts: list[Blob]
    ) -> IngestDocumentResult:
        validate_identifiers(request.document_id, request.source)
        prefix = f"{request.source}/{request.document_id}/{workflow.info().run_id}"
        self._status = IngestionStatus.DOWNLOADING
        download = await self._step(
            "download",
            IngestionActivities.download,
            DownloadInput(request.document_id, request.source, request.bucket, request.key),
        )
        self._status = IngestionStatus.DOWNLOADED
        parsed = await self._step("parse", IngestionActivities.parse, ParseInput(download, prefix))
        artifacts.append(parsed.text)
        self._status = IngestionStatus.PARSED
        found = await self._step(
            "extract_entities",
            IngestionActivities.extract_entities,
            ExtractEntitiesInput(parsed.text),
        )
        self._status = IngestionStatus.ENTITIES_EXTRACTED
        embedded = await self._step(
            "embed", IngestionActivities.embed, EmbedInput(parsed.text, prefix)
        )
        artifacts.append(embedded.chunks)
        self._status = IngestionStatus.EMBEDDINGS_GENERATED
        if request.write_graph:
            await self._step(
                "write_graph",
                IngestionActivities.write_graph,
                WriteGraphInput(
                    request.document_id,
                    request.source,
                    download.content_type,
                    parsed.content_hash,
                    found.entities,
                    embedded.chunks,
                ),
            )
        self._status = IngestionStatus.COMPLETED
        return IngestDocumentResult(
            document_id=request.document_id,
            source=request.source,
            path=IngestionPath.TEMPORAL,
            status=IngestionStatus.COMPLETED,
            content_type=download.content_type,
            content_hash=parsed.content_hash,
            chunk_count=embedded.chunk_count,
            entities=found.entities,
            timings=list(self._timings),
            graph_written=request.write_graph,
        )

    async def _step(self, name: str, method: Any, argument: Any) -> Any:
        options = STEPS.get(name, StepOptions(3, timedelta(minutes=1)))
        started = workflow.now()
        try:
            if options.local:
                return await workflow.execute_local_activity_method(
                    method,
                    argument,
                    start_to_close_timeout=options.timeout,
                    retry_policy=options.retry_policy(),
                )
            return await workflow.execute_activity_method(
                method,
                argument,
                start_to_close_timeout=options.timeout,
                heartbeat_timeout=options.heartbeat,
                retry_policy=options.retry_policy(),
            )
        finally:
            elapsed = (workflow.now() - started).total_seconds()
            self._timings.append(StepTiming(name, elapsed))

    def _failed(
        self, request: IngestDocumentInput, error_type: str, message: str
    ) -> IngestDocumentResult:
        self._status = IngestionStatus.FAILED
        self._error_type, self._error_message = error_type, message
        workflow.logger.warning("ingestion failed: %s: %s", error_type, message)
        return IngestDocumentResult(
            document_id=request.document_id,
            source=request.source,
            path=IngestionPath.TEMPORAL,
            status=IngestionStatus.FAILED,
            error_type=error_type,
            error_message=message,
            timings=list(self._timings),
        )

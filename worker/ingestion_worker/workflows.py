"""DocumentIngestionWorkflow: the step table (steps.py) walked as Temporal activities.

Deterministic orchestration only: each step runs as the activity the table names, by
name, with the table's retry policy, so this module imports neither the activities nor
the I/O clients behind them. The status is queryable at any time, and every failure ends
in a structured result (status "failed", error type and message) rather than a bare
workflow failure, so callers and the router handle both paths alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from ingestion_worker.errors import PERMANENT_ERRORS, ValidationError
    from ingestion_worker.models import (
        Blob,
        CleanupInput,
        DocumentState,
        IngestDocumentInput,
        IngestDocumentResult,
        IngestionPath,
        IngestionStatus,
        IngestionStatusView,
        StepTiming,
        validate_identifiers,
    )
    from ingestion_worker.steps import BACKOFF_COEFFICIENT, CLEANUP, STEPS, ActivityOptions, Step

# Permanent errors fail at once. (An injected fault is raised non-retryable by the fault
# interceptor itself: the workflow knows nothing of faults.)
NON_RETRYABLE = [cls.__name__ for cls in PERMANENT_ERRORS] + ["EmbeddingRejectedError"]


def retry_policy(options: ActivityOptions) -> RetryPolicy:
    return RetryPolicy(
        maximum_attempts=options.attempts,
        initial_interval=options.initial_interval,
        backoff_coefficient=BACKOFF_COEFFICIENT,
        maximum_interval=options.max_interval,
        non_retryable_error_types=NON_RETRYABLE,
    )


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

    async def _ingest(
        self, request: IngestDocumentInput, artifacts: list[Blob]
    ) -> IngestDocumentResult:
        validate_identifiers(request.document_id, request.source)
        prefix = f"{request.source}/{request.document_id}/{workflow.info().run_id}"
        state = DocumentState(request, artifact_prefix=prefix)
        for step in STEPS:
            if step.status_before is not None:
                self._status = step.status_before
            if step.runs_for(state):
                state = await self._step(step, state)
                # Spilled artifacts are remembered as soon as seen: a later step may drop them.
                artifacts.extend(b for b in state.artifacts() if b not in artifacts)
            self._status = step.status_after
        return state.result(IngestionPath.TEMPORAL, self._timings)

    async def _step(self, step: Step, state: DocumentState) -> DocumentState:
        """Run one step's activity by the name the table gives it."""
        with self._timed(step.name):
            if step.local:
                return await workflow.execute_local_activity(
                    step.activity,
                    state,
                    result_type=DocumentState,
                    start_to_close_timeout=step.timeout,
                    retry_policy=retry_policy(step),
                )
            return await workflow.execute_activity(
                step.activity,
                state,
                result_type=DocumentState,
                start_to_close_timeout=step.timeout,
                heartbeat_timeout=step.heartbeat,
                retry_policy=retry_policy(step),
            )

    async def _cleanup(self, artifacts: list[Blob]) -> None:
        """Best effort: drop spilled artifacts; a bucket lifecycle rule catches any left."""
        if not artifacts:
            return
        with self._timed(CLEANUP.name):
            try:
                await workflow.execute_activity(
                    CLEANUP.activity,
                    CleanupInput(artifacts),
                    result_type=int,
                    start_to_close_timeout=CLEANUP.timeout,
                    retry_policy=retry_policy(CLEANUP),
                )
            except ActivityError as err:
                workflow.logger.warning("artifact cleanup failed: %s", err)

    @contextlib.contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        """Record how long `name` took, whatever its outcome (the get_status timings)."""
        started = workflow.now()
        try:
            yield
        finally:
            self._timings.append(StepTiming(name, (workflow.now() - started).total_seconds()))

    def _failed(
        self, request: IngestDocumentInput, error_type: str, message: str
    ) -> IngestDocumentResult:
        self._status = IngestionStatus.FAILED
        self._error_type, self._error_message = error_type, message
        workflow.logger.warning("ingestion failed: %s: %s", error_type, message)
        return IngestDocumentResult.failure(
            request, IngestionPath.TEMPORAL, error_type, message, self._timings
        )

"""DocumentIngestionWorkflow: the step table (steps.py) walked as Temporal activities.

Deterministic orchestration only: each step runs as the activity the table names, by
name, so this module imports neither the activities nor the I/O clients behind them.

Two shapes, one table. The workflow first runs the table's inline group (download, parse,
entities, embed) as one local activity: for a document up to INLINE_DOCUMENT_BYTES the
worker runs all four and returns what the graph write needs, saving a server round trip
and a workflow task per step; for a larger one it runs none of them (it only looked at
the object's size) and the workflow runs them as the chain of activities, payloads kept
in S3. The graph write is always a regular activity, heartbeating while it waits.

Retries belong to the workflow: every activity runs one attempt at a time, and a failure
waits `steps.retry_delay` (the function the legacy path uses) on a durable timer before
the next one, so `get_status` says "retrying: <reason>" meanwhile, and an outage of S3 or
of the graph database is retried for the budget the worker's settings give it.

The status is queryable at any time, and every failure ends in a structured result
(status "failed", error type and message) rather than a bare workflow failure, so callers
and the router handle both paths alike. Runs started before the inline group existed
(no INLINE_PATCH marker in their history) replay and continue with the old commands: the
chain for every document and Temporal's retry policies (README: Workflow versioning).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

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
        InlineResult,
        StepTiming,
        validate_identifiers,
    )
    from ingestion_worker.steps import (
        BACKOFF_COEFFICIENT,
        CLEANUP,
        INLINE,
        INLINE_STEPS,
        STEPS,
        ActivityOptions,
        Step,
        retry_delay,
        step_named,
    )

#: The patch that introduced the inline group and the workflow's own retries.
INLINE_PATCH = "inline-group-and-workflow-retries"

# Permanent errors fail at once. (An injected fault is raised non-retryable by the fault
# interceptor itself: the workflow knows nothing of faults.)
NON_RETRYABLE = [cls.__name__ for cls in PERMANENT_ERRORS] + ["EmbeddingRejectedError"]

#: Attempts are counted by the workflow (see `_attempts`), so each activity runs once.
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)


def retry_policy(options: ActivityOptions) -> RetryPolicy:
    """Temporal's own retries: the cleanup activity, and every step of pre-patch runs."""
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
        self._retrying: str | None = None
        #: False for runs started before INLINE_PATCH: Temporal retries their activities.
        self._workflow_retries = True

    @workflow.query(name="get_status")
    def get_status(self) -> IngestionStatusView:
        return IngestionStatusView(
            status=self._status,
            document_id=self._document_id,
            source=self._source,
            error_type=self._error_type,
            error_message=self._error_message,
            timings=list(self._timings),
            retrying=self._retrying,
        )

    @workflow.run
    async def run(self, request: IngestDocumentInput) -> IngestDocumentResult:
        self._document_id, self._source = request.document_id, request.source
        artifacts: list[Blob] = []
        try:
            result = await self._ingest(request, artifacts)
        except FailureError as err:  # activity errors; local ones may arrive unwrapped
            failure = _cause(err)
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
        done = 0
        if workflow.patched(INLINE_PATCH):
            state, done = await self._inline(state, artifacts)
        else:  # started before the patch: its history holds the old commands
            self._workflow_retries = False
        for step in STEPS[done:]:
            if step.status_before is not None:
                self._status = step.status_before
            if step.runs_for(state):
                state = await self._step(step, state)
                # Spilled artifacts are remembered as soon as seen: a later step may drop them.
                artifacts.extend(b for b in state.artifacts() if b not in artifacts)
            self._status = step.status_after
        return state.result(IngestionPath.TEMPORAL, self._timings)

    async def _inline(
        self, state: DocumentState, artifacts: list[Blob]
    ) -> tuple[DocumentState, int]:
        """The inline group as one local activity: the state, and how many steps it ran.

        A query cannot see inside a local activity (the server holds it until the workflow
        task ends), so the status reads "downloading" until the whole group is done."""
        if INLINE_STEPS[0].status_before is not None:
            self._status = INLINE_STEPS[0].status_before
        result = await self._attempts(
            INLINE,
            lambda: workflow.execute_local_activity(
                INLINE.activity,
                state,
                result_type=InlineResult,
                start_to_close_timeout=INLINE.timeout,
                retry_policy=ONE_ATTEMPT,
            ),
        )
        self._timings.extend(result.timings)
        artifacts.extend(b for b in result.spilled if b not in artifacts)
        if result.completed:
            self._status = INLINE_STEPS[result.completed - 1].status_after
        return result.state, result.completed

    async def _step(self, step: Step, state: DocumentState) -> DocumentState:
        """Run one step's activity by the name the table gives it, with its retries."""
        with self._timed(step.name):
            return await self._attempts(step, lambda: self._execute(step, state))

    def _execute(self, step: Step, state: DocumentState) -> Awaitable[DocumentState]:
        policy = ONE_ATTEMPT if self._workflow_retries else retry_policy(step)
        if step.local:
            return workflow.execute_local_activity(
                step.activity,
                state,
                result_type=DocumentState,
                start_to_close_timeout=step.timeout,
                retry_policy=policy,
            )
        return workflow.execute_activity(
            step.activity,
            state,
            result_type=DocumentState,
            start_to_close_timeout=step.timeout,
            heartbeat_timeout=step.heartbeat,
            retry_policy=policy,
        )

    async def _attempts[T](
        self, options: ActivityOptions, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """`attempt()` until it succeeds; each failure waits `retry_delay` on a durable timer,
        and is raised once the step's attempts, or its dependency's budget, are spent."""
        failures, first_failure = 0, workflow.now()
        while True:
            try:
                result = await attempt()
            except FailureError as err:
                if not self._workflow_retries:
                    raise
                failures += 1
                if failures == 1:
                    first_failure = workflow.now()
                delay = self._retry_after(options, _cause(err), failures, first_failure)
                if delay is None:
                    raise
                await workflow.sleep(delay)
                continue
            self._retrying = None
            return result

    def _retry_after(
        self, options: ActivityOptions, failure: BaseException, failures: int, since: datetime
    ) -> float | None:
        """Seconds until the next attempt (and the status says why), or None to give up."""
        step, budget = None, None
        if isinstance(failure, ApplicationError):
            if failure.non_retryable:
                return None
            step, budget = _retry_details(failure)
        if step is not None:  # the step that failed, possibly inside the inline group
            options = step_named(step)
        elapsed = (workflow.now() - since).total_seconds()
        delay = retry_delay(options, failures, elapsed, budget, workflow.random().random())
        if delay is not None:
            kind = failure.type if isinstance(failure, ApplicationError) else None
            reason = f"{kind or type(failure).__name__}: {_message(failure)}"
            self._retrying = f"retrying: {reason} (attempt {failures + 1} in {delay:.1f} s)"
        return delay

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
        self._status, self._retrying = IngestionStatus.FAILED, None
        self._error_type, self._error_message = error_type, message
        workflow.logger.warning("ingestion failed: %s: %s", error_type, message)
        return IngestDocumentResult.failure(
            request, IngestionPath.TEMPORAL, error_type, message, self._timings
        )


def _cause(err: FailureError) -> BaseException:
    """The error an activity raised, from the ActivityError that wraps it (if any)."""
    return err.cause if isinstance(err, ActivityError) and err.cause else err


def _message(failure: BaseException) -> str:
    return failure.message if isinstance(failure, FailureError) else str(failure)


def _retry_details(failure: ApplicationError) -> tuple[str | None, float | None]:
    """(step name, retry budget) from the details our activities attach (activities.py)."""
    details: tuple[Any, ...] = tuple(failure.details)
    step = details[0] if details and isinstance(details[0], str) else None
    budget = details[1] if len(details) > 1 and isinstance(details[1], int | float) else None
    return step, None if budget is None else float(budget)

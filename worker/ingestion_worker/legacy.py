"""The legacy path: the step table walked in this process, without Temporal.

It runs the same step functions with the same retries as the workflow (attempt counts,
backoff with jitter, and the S3 and graph-database outage budgets: `steps.retry_delay`)
and returns the same `IngestDocumentResult`, so the router can run both paths on one
document and compare them field by field. Content stays in memory (nothing is spilled
to S3: there is no payload limit within one process).

The status callback hears each step's status and, while a failed step waits for its
next attempt, "retrying: <error type>: <message> (...)", as the workflow's query says.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable

from ingestion_worker.errors import IngestionError
from ingestion_worker.metrics import observe_step
from ingestion_worker.models import (
    DocumentState,
    IngestDocumentInput,
    IngestDocumentResult,
    IngestionPath,
    IngestionStatus,
    StepTiming,
    validate_identifiers,
)
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.step_functions import run_step
from ingestion_worker.steps import STEPS, Step, retry_delay

#: Hears an IngestionStatus (a str) at each step, or a "retrying: ..." text while waiting.
StatusCallback = Callable[[str], None]


class _Run:
    def __init__(
        self, pipeline: Pipeline, on_status: StatusCallback | None, sleep: Callable[[float], None]
    ) -> None:
        self.pipeline = pipeline
        self.timings: list[StepTiming] = []
        self._on_status = on_status
        self._sleep = sleep

    def status(self, status: str) -> None:
        if self._on_status is not None:
            self._on_status(status)

    def step(self, step: Step, state: DocumentState) -> DocumentState:
        """Run one step, retried as the workflow retries it (`steps.retry_delay`)."""
        started = time.perf_counter()
        failures, first_failure = 0, 0.0
        try:
            while True:
                try:
                    with observe_step(f"legacy_{step.name}"):
                        return run_step(step, self.pipeline, state)
                except IngestionError as exc:
                    failures += 1
                    first_failure = first_failure or time.monotonic()
                    delay = self._retry_after(step, exc, failures, first_failure)
                    if delay is None:
                        raise
                    self._sleep(delay)
        finally:
            self.timings.append(StepTiming(step.name, time.perf_counter() - started))

    def _retry_after(
        self, step: Step, exc: IngestionError, failures: int, since: float
    ) -> float | None:
        if not exc.retryable:
            return None
        budget = self.pipeline.retry_budget(exc)
        elapsed = time.monotonic() - since
        delay = retry_delay(step, failures, elapsed, budget, random.random())
        if delay is not None:
            reason = f"{type(exc).__name__}: {exc}"
            self.status(f"retrying: {reason} (attempt {failures + 1} in {delay:.1f} s)")
        return delay


def ingest_legacy(
    request: IngestDocumentInput,
    pipeline: Pipeline,
    on_status: StatusCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestDocumentResult:
    """Ingest one document in this process; never raises for pipeline errors."""
    run = _Run(pipeline.in_memory(), on_status, sleep)
    try:
        return _ingest(request, run)
    except IngestionError as exc:
        run.status(IngestionStatus.FAILED)
        return IngestDocumentResult.failure(
            request, IngestionPath.LEGACY, type(exc).__name__, str(exc), run.timings
        )


def _ingest(request: IngestDocumentInput, run: _Run) -> IngestDocumentResult:
    validate_identifiers(request.document_id, request.source)
    prefix = f"{request.source}/{request.document_id}/legacy-{uuid.uuid4().hex}"
    state = DocumentState(request, artifact_prefix=prefix)
    for step in STEPS:
        if step.status_before is not None:
            run.status(step.status_before)
        if step.runs_for(state):
            state = run.step(step, state)
        run.status(step.status_after)
    return state.result(IngestionPath.LEGACY, run.timings)

"""The legacy path: the same five steps, in-process, without Temporal.

It shares the step code (`Pipeline`) and the per-step attempt counts with the
workflow and returns the same `IngestDocumentResult`, so the router can run both
paths on one document and compare them field by field.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ingestion_worker.errors import IngestionError
from ingestion_worker.metrics import observe_step
from ingestion_worker.models import (
    IngestDocumentInput,
    IngestDocumentResult,
    IngestionPath,
    IngestionStatus,
    StepTiming,
    validate_identifiers,
)
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.workflows import STEPS

T = TypeVar("T")
StatusCallback = Callable[[IngestionStatus], None]


class _Run:
    def __init__(self, on_status: StatusCallback | None, sleep: Callable[[float], None]) -> None:
        self.timings: list[StepTiming] = []
        self._on_status = on_status
        self._sleep = sleep

    def status(self, status: IngestionStatus) -> None:
        if self._on_status is not None:
            self._on_status(status)

    def step(self, name: str, fn: Callable[[], T]) -> T:
        """Run one step with the workflow's attempt count and backoff for that step."""
        options = STEPS[name]
        delay = options.initial_interval.total_seconds()
        started = time.perf_counter()
        try:
            for attempt in range(1, options.attempts + 1):
                try:
                    with observe_step(f"legacy_{name}"):
                        return fn()
                except IngestionError as exc:
                    if not exc.retryable or attempt == options.attempts:
                        raise
                    self._sleep(delay)
                    delay = min(delay * 2, options.max_interval.total_seconds())
            raise AssertionError("unreachable")
        finally:
            self.timings.append(StepTiming(name, time.perf_counter() - started))


def ingest_legacy(
    request: IngestDocumentInput,
    pipeline: Pipeline,
    on_status: StatusCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestDocumentResult:
    """Ingest one document in this process; never raises for pipeline errors."""
    run = _Run(on_status, sleep)
    try:
        return _ingest(request, pipeline, run)
    except IngestionError as exc:
        run.status(IngestionStatus.FAILED)
        return IngestDocumentResult(
            document_id=request.document_id,
            source=request.source,
            path=IngestionPath.LEGACY,
            status=IngestionStatus.FAILED,
            error_type=type(exc).__name__,
            error_message=str(exc),
            timings=run.timings,
        )


def _ingest(request: IngestDocumentInput, p: Pipeline, run: _Run) -> IngestDocumentResult:
    validate_identifiers(request.document_id, request.source)
    bucket, key = p.locate(request.document_id, request.source, request.bucket, request.key)
    run.status(IngestionStatus.DOWNLOADING)
    fetched = run.step("download", lambda: p.fetch(bucket, key))
    run.status(IngestionStatus.DOWNLOADED)
    assert fetched.data is not None
    data = fetched.data
    parsed = run.step("parse", lambda: p.parse(data, key, fetched.declared_content_type))
    run.status(IngestionStatus.PARSED)
    entities = run.step("extract_entities", lambda: p.extract_entities(parsed.text))
    run.status(IngestionStatus.ENTITIES_EXTRACTED)
    chunks = run.step("embed", lambda: p.embed(parsed.text))
    run.status(IngestionStatus.EMBEDDINGS_GENERATED)
    if request.write_graph:
        run.step(
            "write_graph",
            lambda: p.write(
                document_id=request.document_id,
                source=request.source,
                parsed_type=parsed.content_type,
                parsed_hash=parsed.content_hash,
                chunks=chunks,
                entities=entities,
            ),
        )
    run.status(IngestionStatus.COMPLETED)
    return IngestDocumentResult(
        document_id=request.document_id,
        source=request.source,
        path=IngestionPath.LEGACY,
        status=IngestionStatus.COMPLETED,
        content_type=parsed.content_type,
        content_hash=parsed.content_hash,
        chunk_count=len(chunks),
        entities=entities,
        timings=run.timings,
        graph_written=request.write_graph,
    )

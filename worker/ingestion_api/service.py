"""The router's core, apart from HTTP: choose a path per document, run it, measure it.

A 202 means the document will be ingested, whatever process dies:
- Temporal path: accepted once its workflow exists (durable in Temporal from then on);
- legacy path: it runs in this process, so its acceptance is committed to the journal
  (`journal.py`) before the 202, and `resume()` at start-up runs every accepted document
  that has no result yet. The journal also keeps each document's terminal result, so a
  restarted API answers status for everything it accepted.

Acceptance is bounded by `max_in_flight`; on shutdown every accepted document is awaited
(`drain`). The same document posted again while it runs gets the same handle back.
Status reads and waits are `status_reader.py`'s: this module tells it what runs here and
when a document ends.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ingestion_contract.metrics import OUTCOME_FAILURE, OUTCOME_SUCCESS
from ingestion_worker.client import start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import (
    IngestDocumentInput,
    IngestDocumentResult,
    IngestionPath,
    IngestionStatus,
    validate_identifiers,
    workflow_id_for,
)
from ingestion_worker.pipeline import Pipeline
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from ingestion_api.journal import Journal
from ingestion_api.metrics import DOCUMENTS, DURATION, ERRORS, IN_FLIGHT, RESUMED
from ingestion_api.routing import should_use_temporal
from ingestion_api.routing_source import RoutingSource
from ingestion_api.shadow import ShadowRunner, sampled
from ingestion_api.status_reader import (
    Live,
    ReadSettings,
    StatusReader,
    TemporalUnavailable,
    failure_of,
    temporal_call,
)
from ingestion_api.status_view import LegacyProgress, StatusView, encode_timings, step_timings

log = logging.getLogger("ingestion_api")

Key = tuple[str, str]  # (source, document_id)
RESULT_RETRY_MAX_S = 30.0


class Overloaded(Exception):
    """Too many documents in flight: the caller should retry later."""


@dataclass(frozen=True)
class Accepted:
    document_id: str
    source: str
    path: IngestionPath
    shadow: bool
    duplicate: bool = False


class IngestionService:
    def __init__(
        self,
        routing: RoutingSource,
        temporal: Client,
        task_queue: str,
        pipeline: Pipeline,
        journal: Journal | None = None,
        max_in_flight: int = 256,
        legacy_threads: int = 16,
        temporal_timeout: float = 3.0,
        reads: ReadSettings | None = None,
    ) -> None:
        self.routing = routing
        self.temporal = temporal
        self.task_queue = task_queue
        self.pipeline = pipeline
        self.journal = journal or Journal(None)
        self.max_in_flight = max_in_flight
        self.temporal_timeout = temporal_timeout
        self._executor = ThreadPoolExecutor(legacy_threads, thread_name_prefix="legacy")
        self._shadow = ShadowRunner(temporal, task_queue, pipeline, self._executor)
        # Registered before the first await, so a concurrent duplicate sees it.
        self._running: dict[Key, Accepted] = {}
        #: Legacy progress between acceptance and result (not journaled: see journal.py).
        self._progress: dict[Key, LegacyProgress] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        reads = reads or ReadSettings(timeout=temporal_timeout)
        self.reader = StatusReader(temporal, self.journal, self._live, reads)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def submit(self, request: IngestDocumentInput) -> Accepted:
        """Route and start one document; raises ValidationError, Overloaded, TemporalUnavailable."""
        validate_identifiers(request.document_id, request.source)
        key = (request.source, request.document_id)
        running = self._running.get(key)
        if running is not None:
            return replace(running, duplicate=True)
        if len(self._running) >= self.max_in_flight:
            raise Overloaded(f"{len(self._running)} documents in flight")
        config = self.routing.current
        path = (
            IngestionPath.TEMPORAL
            if should_use_temporal(request.document_id, config.percentage)
            else IngestionPath.LEGACY
        )
        shadow = config.parallel and sampled(request.document_id, config.shadow_sample_rate)
        accepted = Accepted(request.document_id, request.source, path, shadow)
        started = time.perf_counter()
        self._running[key] = accepted
        IN_FLIGHT.set(len(self._running))
        try:
            handle = await self._accept(path, request)
        except BaseException:
            self._running.pop(key, None)
            IN_FLIGHT.set(len(self._running))
            raise
        self._spawn(key, accepted, request, handle, started)
        return accepted

    async def _accept(
        self, path: IngestionPath, request: IngestDocumentInput
    ) -> WorkflowHandle[Any, IngestDocumentResult] | None:
        """Make the acceptance durable: the journal record, or the started workflow."""
        if path == IngestionPath.LEGACY:
            self._journal_accept(request, path)  # raises: nothing is accepted
            return None
        start = start_ingestion(self.temporal, request, self.task_queue)
        handle = await temporal_call(start, self.temporal_timeout)
        try:
            self._journal_accept(request, path)
        except Exception:  # the workflow is durable anyway; only this status record is missing
            log.exception("journal write failed for %s/%s", request.source, request.document_id)
        return handle

    def _journal_accept(self, request: IngestDocumentInput, path: IngestionPath) -> None:
        self.journal.accept(request.source, request.document_id, path, request.bucket, request.key)

    def _spawn(
        self,
        key: Key,
        accepted: Accepted,
        request: IngestDocumentInput,
        handle: WorkflowHandle[Any, IngestDocumentResult] | None,
        started: float | None,
    ) -> None:
        if accepted.path == IngestionPath.LEGACY:
            self._progress[key] = LegacyProgress()
        # A task's first step runs after this request's answer is written, so a legacy
        # thread never competes with the 202 for the GIL.
        task = asyncio.create_task(self._finish(key, accepted, request, handle, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> int:
        """Run again every journaled document without a result (start-up after a crash)."""
        records = self.journal.unfinished()
        for record in records:
            key = (record.source, record.document_id)
            if key in self._running:
                continue
            request = IngestDocumentInput(
                record.document_id, record.source, record.bucket, record.key
            )
            path = IngestionPath(record.path)
            accepted = Accepted(record.document_id, record.source, path, shadow=False)
            self._running[key] = accepted
            self.journal.resumed(record.source, record.document_id)
            RESUMED.labels(record.path).inc()
            self._spawn(key, accepted, request, None, None)
        IN_FLIGHT.set(len(self._running))
        if records:
            log.info("resumed %d accepted documents from the journal", len(records))
        return len(records)

    async def _finish(
        self,
        key: Key,
        accepted: Accepted,
        request: IngestDocumentInput,
        handle: WorkflowHandle[Any, IngestDocumentResult] | None,
        started: float | None,
    ) -> None:
        shadow = self._shadow.start(accepted.path, request) if accepted.shadow else None
        try:
            try:
                if accepted.path == IngestionPath.LEGACY:
                    result = await self._run_legacy(key, request)
                else:
                    result = await self._await_workflow(request, handle)
            except Exception as exc:  # the path itself broke
                log.exception("document %s/%s lost its path", *key)
                result = _broken(request, accepted.path, exc)
            self._record_result(key, accepted.path, result, started)
            if shadow is not None:
                await self._shadow.settle(result, shadow)
        finally:
            self._running.pop(key, None)
            self._progress.pop(key, None)
            IN_FLIGHT.set(len(self._running))
            self.reader.finished(key)

    async def _run_legacy(self, key: Key, request: IngestDocumentInput) -> IngestDocumentResult:
        progress = self._progress.setdefault(key, LegacyProgress())  # hears the legacy thread
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, ingest_legacy, request, self.pipeline, progress
        )

    async def _await_workflow(
        self,
        request: IngestDocumentInput,
        handle: WorkflowHandle[Any, IngestDocumentResult] | None,
    ) -> IngestDocumentResult:
        """The workflow's result, waiting out Temporal outages (the workflow is durable)."""
        delay = 0.5
        while True:
            try:
                if handle is None:
                    handle = self.temporal.get_workflow_handle(
                        workflow_id_for(request.source, request.document_id),
                        result_type=IngestDocumentResult,
                    )
                return await handle.result()
            except WorkflowFailureError as exc:
                return _broken(request, IngestionPath.TEMPORAL, exc)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:  # never started, or expired: start it
                    handle = await start_ingestion(self.temporal, request, self.task_queue)
                    continue
                log.warning("waiting for %s: Temporal unavailable (%s)", request.document_id, exc)
            except RuntimeError as exc:  # a lazy client that cannot connect yet
                log.warning("waiting for %s: Temporal unavailable (%s)", request.document_id, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESULT_RETRY_MAX_S)

    def _record_result(
        self, key: Key, path: IngestionPath, result: IngestDocumentResult, started: float | None
    ) -> None:
        """Metrics and the journal's terminal record. Resumed documents (started None) are
        counted but not timed: this process did not see them start."""
        outcome = OUTCOME_SUCCESS if result.succeeded else OUTCOME_FAILURE
        DOCUMENTS.labels(path.value, outcome).inc()
        if outcome == OUTCOME_FAILURE:
            ERRORS.labels(path.value, result.error_type or "Unknown").inc()
        if started is not None:
            DURATION.labels(path.value).observe(time.perf_counter() - started)
        timings = encode_timings(step_timings(result.timings))
        try:
            self.journal.finish(
                *key, result.status.value, result.error_type, result.error_message, timings
            )
        except Exception:  # the document is done; a restart would run it again (idempotent)
            log.exception("journal write failed for the result of %s/%s", *key)

    def _live(self, key: Key) -> Live | None:
        running = self._running.get(key)
        if running is None:
            return None
        if running.path == IngestionPath.LEGACY:
            return Live(running.path, self._progress.get(key) or LegacyProgress())
        return Live(running.path)

    async def status(self, source: str, document_id: str, wait: float = 0.0) -> StatusView | None:
        """The document's status on whichever path it took, after waiting up to `wait`
        seconds for it to finish (None: unknown here and to Temporal)."""
        validate_identifiers(document_id, source)
        return await self.reader.wait((source, document_id), wait)

    async def statuses(self, keys: Sequence[Key]) -> list[StatusView | Exception | None]:
        """Several documents' statuses at once (valid keys); a read that fails is its error."""

        async def one(key: Key) -> StatusView | Exception | None:
            try:
                return await self.reader.status(key)
            except (TemporalUnavailable, sqlite3.Error) as exc:
                return exc

        return await asyncio.gather(*(one(key) for key in keys))

    async def drain(self) -> None:
        """Wait for every accepted document to finish (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.journal.close()


def _broken(
    request: IngestDocumentInput, path: IngestionPath, exc: BaseException
) -> IngestDocumentResult:
    error_type, message = failure_of(exc)
    return IngestDocumentResult(
        document_id=request.document_id,
        source=request.source,
        path=path,
        status=IngestionStatus.FAILED,
        error_type=error_type,
        error_message=message,
    )

"""The router's core, apart from HTTP: choose a path per document, run it, measure it.

A document is accepted only if it can be carried to the end: the Temporal path is
accepted once its workflow has started (durable from then on); the legacy path
runs in this process, so acceptance is bounded by `max_in_flight` and every
accepted document is awaited before shutdown. The same document posted again while
it runs gets the same handle back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ingestion_contract.metrics import OUTCOME_FAILURE, OUTCOME_SUCCESS
from ingestion_worker.client import ingestion_status, start_ingestion
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
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ingestion_api.metrics import (
    DOCUMENTS,
    DURATION,
    ERRORS,
    IN_FLIGHT,
    SHADOW_COMPARISONS,
    SHADOW_MISMATCHES,
)
from ingestion_api.routing import should_use_temporal
from ingestion_api.routing_source import RoutingSource
from ingestion_api.shadow import differing_fields, sampled

log = logging.getLogger("ingestion_api")


class Overloaded(Exception):
    """Too many documents in flight: the caller should retry later."""


@dataclass(frozen=True)
class Accepted:
    document_id: str
    source: str
    path: IngestionPath
    shadow: bool
    duplicate: bool = False


@dataclass
class _Record:
    path: IngestionPath
    status: IngestionStatus = IngestionStatus.PENDING
    result: IngestDocumentResult | None = None


class IngestionService:
    def __init__(
        self,
        routing: RoutingSource,
        temporal: Client,
        task_queue: str,
        pipeline: Pipeline,
        max_in_flight: int = 256,
        legacy_threads: int = 16,
        status_records: int = 100_000,
    ) -> None:
        self.routing = routing
        self.temporal = temporal
        self.task_queue = task_queue
        self.pipeline = pipeline
        self.max_in_flight = max_in_flight
        self._executor = ThreadPoolExecutor(legacy_threads, thread_name_prefix="legacy")
        # Registered before the first await, so a concurrent duplicate sees it.
        self._running: dict[tuple[str, str], Accepted] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()
        self._max_records = status_records

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def submit(self, request: IngestDocumentInput) -> Accepted:
        """Route and start one document; raises ValidationError, Overloaded, or Temporal errors."""
        validate_identifiers(request.document_id, request.source)
        key = (request.source, request.document_id)
        if key in self._running:
            return replace(self._running[key], duplicate=True)
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
            self._remember(key, _Record(path))
            primary = await self._begin(path, request)
        except BaseException:
            self._running.pop(key, None)
            IN_FLIGHT.set(len(self._running))
            raise
        task = asyncio.create_task(self._finish(key, accepted, request, primary, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return accepted

    async def _begin(
        self, path: IngestionPath, request: IngestDocumentInput
    ) -> asyncio.Future[Any]:
        """Start the path; for Temporal, return only once the workflow exists."""
        if path == IngestionPath.TEMPORAL:
            handle = await start_ingestion(self.temporal, request, self.task_queue)
            return asyncio.ensure_future(handle.result())
        loop = asyncio.get_running_loop()
        key = (request.source, request.document_id)
        return loop.run_in_executor(
            self._executor,
            lambda: ingest_legacy(request, self.pipeline, lambda s: self._set_status(key, s)),
        )

    async def _finish(
        self,
        key: tuple[str, str],
        accepted: Accepted,
        request: IngestDocumentInput,
        primary: asyncio.Future[Any],
        started: float,
    ) -> None:
        shadow = None
        if accepted.shadow:
            other = (
                IngestionPath.LEGACY
                if accepted.path == IngestionPath.TEMPORAL
                else IngestionPath.TEMPORAL
            )
            shadow = asyncio.ensure_future(self._run_shadow(other, request))
        try:
            try:
                result = await primary
            except Exception as exc:  # the path itself broke (e.g. Temporal unreachable)
                log.exception("document %s/%s lost its path", *key)
                result = self._broken(request, accepted.path, exc)
            self._record_result(key, accepted.path, result, time.perf_counter() - started)
            if shadow is not None:
                await self._settle_shadow(result, shadow)
        finally:
            self._running.pop(key, None)
            IN_FLIGHT.set(len(self._running))

    async def _settle_shadow(
        self, primary: IngestDocumentResult, shadow: asyncio.Future[IngestDocumentResult]
    ) -> None:
        """Compare with the shadow run; a broken shadow is logged, never counted as traffic."""
        try:
            self._compare(primary, await shadow)
        except Exception:
            log.exception("shadow run for %s/%s failed", primary.source, primary.document_id)

    @staticmethod
    def _broken(
        request: IngestDocumentInput, path: IngestionPath, exc: Exception
    ) -> IngestDocumentResult:
        return IngestDocumentResult(
            document_id=request.document_id,
            source=request.source,
            path=path,
            status=IngestionStatus.FAILED,
            error_type=type(exc).__name__,
            error_message=str(exc),
        )

    async def _run_shadow(
        self, path: IngestionPath, request: IngestDocumentInput
    ) -> IngestDocumentResult:
        """The other path, computing everything but leaving the graph alone."""
        dry = replace(request, write_graph=False)
        if path == IngestionPath.TEMPORAL:
            workflow_id = workflow_id_for(request.source, request.document_id) + "/shadow"
            handle = await start_ingestion(self.temporal, dry, self.task_queue, workflow_id)
            return await handle.result()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, ingest_legacy, dry, self.pipeline)

    def _compare(self, primary: IngestDocumentResult, shadow: IngestDocumentResult) -> None:
        SHADOW_COMPARISONS.inc()
        differences = differing_fields(primary, shadow)
        if differences:
            SHADOW_MISMATCHES.inc()
            details = {f: (getattr(primary, f), getattr(shadow, f)) for f in differences}
            log.warning(
                "shadow mismatch for %s/%s (%s vs %s): %s",
                primary.source,
                primary.document_id,
                primary.path,
                shadow.path,
                details,
            )

    def _record_result(
        self, key: tuple[str, str], path: IngestionPath, result: IngestDocumentResult, took: float
    ) -> None:
        outcome = OUTCOME_SUCCESS if result.succeeded else OUTCOME_FAILURE
        self._count(path, outcome, result.error_type)
        DURATION.labels(path.value).observe(took)
        record = self._records.get(key)
        if record is not None:
            record.result, record.status = result, result.status

    @staticmethod
    def _count(path: IngestionPath, outcome: str, error_type: str | None) -> None:
        DOCUMENTS.labels(path.value, outcome).inc()
        if outcome == OUTCOME_FAILURE:
            ERRORS.labels(path.value, error_type or "Unknown").inc()

    def _set_status(self, key: tuple[str, str], status: IngestionStatus) -> None:
        """Progress from the legacy thread; the final status arrives with the result."""
        record = self._records.get(key)
        if record is not None and status not in (IngestionStatus.COMPLETED, IngestionStatus.FAILED):
            record.status = status

    def _remember(self, key: tuple[str, str], record: _Record) -> None:
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self._max_records:
            self._records.popitem(last=False)

    async def status(self, source: str, document_id: str) -> dict[str, Any] | None:
        """The document's current status on whichever path it took (None: unknown)."""
        validate_identifiers(document_id, source)
        record = self._records.get((source, document_id))
        if record is None or record.path == IngestionPath.TEMPORAL:
            try:
                view = await ingestion_status(self.temporal, source, document_id)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return None
                raise  # Temporal trouble is not "unknown document"
            return {
                "path": IngestionPath.TEMPORAL.value,
                "status": view.status.value,
                "error_type": view.error_type,
                "error_message": view.error_message,
            }
        result = record.result
        return {
            "path": record.path.value,
            "status": record.status.value,
            "error_type": result.error_type if result else None,
            "error_message": result.error_message if result else None,
        }

    async def drain(self) -> None:
        """Wait for every accepted document to finish (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def close(self) -> None:
        self._executor.shutdown(wait=True)

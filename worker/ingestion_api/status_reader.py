"""Where a document's status comes from, at the least cost to the Temporal workers.

A `get_status` query makes a worker answer (and, for a closed workflow, fetch and replay
its whole history), so status polling used to compete with ingestion for the workers.
Now each read takes the cheapest source that knows the answer:

1. a legacy run in this process: its live progress (memory);
2. a finished document this replica accepted (either path): the journal's terminal record,
   written when the document ended (SQLite, microseconds; it survives a restart);
3. a workflow this replica is following (it accepted it and awaits its result): the
   `get_status` query, shared by every concurrent read and reused for `reuse_seconds`; at
   most `queries_per_second` queries a second leave this process, whatever the number of
   documents polled: past that, a read gets the document's last answer (older than
   `reuse_seconds`), or waits for its turn when there is none;
4. any other document: Temporal's own record. DescribeWorkflowExecution says whether the
   workflow is open; a closed one's result comes from its close event (frontend calls
   only, no worker), reused for `record_reuse_seconds`; an open one is queried as in 3.

Waits (`?wait=`) end when the document finishes, learnt without polling: the legacy run's
end and the API's own long-poll on the workflow result (`service._finish`) notify the
waiters; for a workflow another replica accepted, one long-poll on its result is shared
by all of its waiters. Temporal calls are bounded by `timeout` (TemporalUnavailable
after it) and at most `max_calls` are in flight per API process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ingestion_worker.client import ingestion_status
from ingestion_worker.models import (
    IngestDocumentResult,
    IngestionPath,
    IngestionStatus,
    workflow_id_for,
)
from temporalio.client import (
    Client,
    WorkflowContinuedAsNewError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from ingestion_api.journal import Journal
from ingestion_api.metrics import STATUS_READS, TEMPORAL_STATUS_CALLS
from ingestion_api.settings import ApiSettings
from ingestion_api.shared_reads import Budget, SharedReads, Watches
from ingestion_api.status_view import (
    LegacyProgress,
    StatusView,
    closed_failure,
    from_query,
    from_record,
    from_result,
)

log = logging.getLogger("ingestion_api")

Key = tuple[str, str]  # (source, document_id)
OPEN = "open"  # Temporal's record says the workflow runs: ask the workflow itself
PENDING = StatusView(IngestionPath.TEMPORAL.value, IngestionStatus.PENDING.value)
POLL_RETRY_SECONDS = 1.0


class TemporalUnavailable(Exception):
    """Temporal did not answer (reason: "unavailable" or "timeout")."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


async def temporal_call(call: Awaitable[Any], seconds: float, *, not_found: bool = False) -> Any:
    """A Temporal RPC bounded by `seconds`; failures become TemporalUnavailable (except
    NOT_FOUND when `not_found` says the caller handles it)."""
    try:
        return await asyncio.wait_for(call, seconds)
    except TimeoutError:
        raise TemporalUnavailable(f"no answer within {seconds:g} s", "timeout") from None
    except (RPCError, RuntimeError) as exc:
        if not_found and isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
            raise
        raise TemporalUnavailable(str(exc), "unavailable") from exc


def failure_of(exc: BaseException) -> tuple[str, str]:
    """(error type, message) of a workflow that closed without a result, named after its
    cause (TerminatedError, TimeoutError, ...), as both the metrics and the status say."""
    if isinstance(exc, WorkflowFailureError) and exc.cause is not None:
        cause = exc.cause
        return type(cause).__name__, cause.message if isinstance(cause, FailureError) else str(
            cause
        )
    return type(exc).__name__, str(exc)


@dataclass(frozen=True)
class Live:
    """A document this replica is running: its path, and a legacy run's progress."""

    path: IngestionPath
    progress: LegacyProgress | None = None


@dataclass(frozen=True)
class ReadSettings:
    timeout: float = 3.0
    #: How long an open workflow's query answer is reused by every read of it.
    reuse_seconds: float = 0.2
    #: How long a closed workflow's record read from Temporal is reused.
    record_reuse_seconds: float = 10.0
    #: Status calls to Temporal in flight at once, per API process.
    max_calls: int = 8
    #: Workflow queries a second, per API process (0: no bound).
    queries_per_second: float = 5.0

    @classmethod
    def of(cls, api: ApiSettings) -> ReadSettings:
        return cls(
            timeout=api.temporal_start_timeout_seconds,
            reuse_seconds=api.status_reuse_seconds,
            record_reuse_seconds=api.status_record_reuse_seconds,
            max_calls=api.status_max_calls,
            queries_per_second=api.status_queries_per_second,
        )


class StatusReader:
    def __init__(
        self,
        temporal: Client,
        journal: Journal,
        live: Callable[[Key], Live | None],
        settings: ReadSettings,
    ) -> None:
        self.temporal = temporal
        self.journal = journal
        self._live = live
        self.settings = settings
        self._queries = SharedReads()
        self._records = SharedReads()
        self._slots = asyncio.Semaphore(settings.max_calls)
        self._budget = Budget(settings.queries_per_second)
        self._watches = Watches()

    async def status(self, key: Key) -> StatusView | None:
        """The document's status now (None: unknown to this replica and to Temporal)."""
        known = await self._known(key)
        if isinstance(known, str):  # OPEN
            return await self._query(key, accepted=self._live(key) is not None)
        return known

    async def wait(self, key: Key, seconds: float) -> StatusView | None:
        """The status once the document finishes, or after `seconds` (its status then).
        Waiting on an open workflow costs no query: only a wait that ends unfinished asks."""
        if seconds <= 0 or self._watches.closed:
            return await self.status(key)
        finished = self._watches.watch(key)  # before the read: a finish in between counts
        try:
            known = await self._known(key)
            if known is None or (isinstance(known, StatusView) and known.finished):
                return known
            if self._live(key) is None:  # nobody here follows it: one long-poll for all
                self._watches.poll(key, lambda: self._until_closed(key))
            if not finished.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(finished), seconds)
            return await self.status(key)
        finally:
            self._watches.unwatch(key)

    async def _known(self, key: Key) -> StatusView | str | None:
        """What is known without asking a worker: a legacy run's progress, the journal's
        terminal record, Temporal's record of a closed run; OPEN when only the workflow
        knows; None when nobody knows the document."""
        live = self._live(key)
        if live is not None:
            if live.progress is None:
                return OPEN
            STATUS_READS.labels("progress").inc()
            return live.progress.view()
        record = self.journal.get(*key)
        if record is not None and (record.finished or record.path == IngestionPath.LEGACY):
            STATUS_READS.labels("journal").inc()
            return from_record(
                record.path, record.status, record.error_type, record.error_message, record.timings
            )
        return await self._temporal(key)

    def finished(self, key: Key) -> None:
        """A document this replica ran has its result recorded: end its waits."""
        self._watches.finished(key)

    def close(self) -> None:
        """Shutting down: pending waits answer now with the current status."""
        self._watches.close()

    @property
    def waiting(self) -> int:
        return self._watches.watched

    async def _call(self, call: Awaitable[Any], name: str) -> Any:
        async with self._slots:
            TEMPORAL_STATUS_CALLS.labels(name).inc()
            return await temporal_call(call, self.settings.timeout, not_found=True)

    async def _query(self, key: Key, accepted: bool = False) -> StatusView | None:
        """The workflow's own answer, one query for every concurrent read of it. A document
        `accepted` here whose workflow Temporal does not know yet is being started: pending."""

        async def fetch() -> tuple[StatusView | None, float]:
            await self._budget.take()
            if accepted and self._live(key) is None:  # it finished while this read waited
                known = await self._known(key)  # (a query now would replay its history)
                if not isinstance(known, str):
                    return known, 0.0
            try:
                view = await self._call(ingestion_status(self.temporal, *key), "query")
            except RPCError:  # NOT_FOUND: no such workflow (yet)
                return (PENDING, 0.0) if accepted else (None, self.settings.reuse_seconds)
            return from_query(view), self.settings.reuse_seconds

        STATUS_READS.labels("query").inc()
        if not self._budget.available():  # past the budget: the last answer, if there is one
            last: StatusView | None = self._queries.last(key)
            if last is not None:
                return last
        result: StatusView | None = await self._queries.get(key, fetch)
        return result

    async def _temporal(self, key: Key) -> StatusView | str | None:
        """Temporal's record of a workflow this replica does not follow (OPEN: it runs)."""

        async def fetch() -> tuple[StatusView | str | None, float]:
            handle = self.temporal.get_workflow_handle(workflow_id_for(*key))
            try:
                described = await self._call(handle.describe(), "describe")
            except RPCError:  # NOT_FOUND: unknown here and to Temporal
                return None, self.settings.reuse_seconds
            if described.status == WorkflowExecutionStatus.RUNNING:
                return OPEN, self.settings.reuse_seconds
            view = await self._closed(key, described.run_id)
            return view, self.settings.record_reuse_seconds if view != OPEN else 0.0

        found: StatusView | str | None = await self._records.get(key, fetch)
        if found != OPEN:
            STATUS_READS.labels("temporal_record").inc()
        return found

    async def _closed(self, key: Key, run_id: str | None) -> StatusView | str:
        """A closed run's outcome, from its close event (no worker involved)."""
        handle = self.temporal.get_workflow_handle(
            workflow_id_for(*key), run_id=run_id, result_type=IngestDocumentResult
        )
        try:
            result = await self._call(handle.result(follow_runs=False), "result")
        except WorkflowFailureError as exc:
            return closed_failure(*failure_of(exc))
        except WorkflowContinuedAsNewError:  # a newer run is open
            return OPEN
        return from_result(result)

    async def _until_closed(self, key: Key) -> None:
        """Long-poll the workflow's result; keep its outcome for the waiters' next read."""
        handle = self.temporal.get_workflow_handle(
            workflow_id_for(*key), result_type=IngestDocumentResult
        )
        while True:
            try:
                TEMPORAL_STATUS_CALLS.labels("long_poll").inc()
                view = from_result(await handle.result())
            except WorkflowFailureError as exc:
                view = closed_failure(*failure_of(exc))
            except (RPCError, RuntimeError) as exc:
                log.warning("long-poll on %s/%s: Temporal unavailable (%s)", *key, exc)
                await asyncio.sleep(POLL_RETRY_SECONDS)
                continue
            self._records.put(key, view, self.settings.record_reuse_seconds)
            return

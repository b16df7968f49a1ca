"""Steady traffic through the ingestion API, with every document accounted for.

"No document lost" is the promise the rollout must keep, so the demo cannot just fire
requests: each document gets a unique id, is POSTed at a steady rate (retried on 429
and 503, as a well-behaved client does), and is followed to its end: Temporal-path
documents through their workflow's result (a history long-poll, which costs the
workers nothing), legacy-path documents through the API's status endpoint. A
document is lost when it never reaches a terminal status; one failed by the injected
fault is a reported failure, not a loss, and is counted separately.

The generator runs on its own event loop thread (aiohttp and the Temporal client are
asyncio); the supervisor reads the ledger from its main thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from ingestion_worker.client import start_ingestion
from ingestion_worker.faults import INJECTED_FAULT_ERROR
from ingestion_worker.models import IngestDocumentInput, IngestDocumentResult, workflow_id_for
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from ingestion_sandbox.demo.samples import Sample
from ingestion_sandbox.servers.common import LoopThread

TERMINAL = ("completed", "failed")
INJECTED = INJECTED_FAULT_ERROR
STATUS_POLL_SECONDS = 0.25
RETRY_SECONDS = 0.5


@dataclass
class DocRecord:
    document_id: str
    kind: str  # sample format
    key: str
    submitted_at: float  # time.monotonic()
    accepted_at: float | None = None
    path: str | None = None  # "temporal" | "legacy", as the API routed it
    finished_at: float | None = None
    status: str | None = None  # "completed" | "failed" once terminal
    error_type: str | None = None
    refusals: int = 0  # 429/503/connection errors before acceptance


@dataclass
class Tally:
    submitted: int = 0
    accepted: int = 0
    succeeded: dict[str, int] = field(default_factory=dict)
    failed_injected: dict[str, int] = field(default_factory=dict)
    failed_other: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0  # after the drain: lost
    refusals: int = 0
    by_format: dict[str, int] = field(default_factory=dict)
    other_errors: dict[str, int] = field(default_factory=dict)


def tally(records: Iterable[DocRecord]) -> Tally:
    """Counts per path and outcome; `unfinished` is the lost count once traffic drained."""
    result = Tally()
    succeeded: Counter[str] = Counter()
    injected: Counter[str] = Counter()
    other: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    for record in records:
        result.submitted += 1
        result.refusals += record.refusals
        formats[record.kind] += 1
        result.accepted += record.accepted_at is not None
        path = record.path or "none"
        if record.status == "completed":
            succeeded[path] += 1
        elif record.status == "failed" and record.error_type == INJECTED:
            injected[path] += 1
        elif record.status == "failed":
            other[path] += 1
            errors[record.error_type or "Unknown"] += 1
        else:
            result.unfinished += 1
    result.succeeded, result.failed_injected = dict(succeeded), dict(injected)
    result.failed_other, result.other_errors = dict(other), dict(errors)
    result.by_format = dict(formats)
    return result


class TrafficGenerator:
    """POST `rate` documents a second, cycling over `samples`, and follow each to its end."""

    def __init__(
        self,
        api_url: str,
        temporal_address: str,
        samples: list[Sample],
        rate: float,
        run_id: str,
        source: str = "demo",
    ) -> None:
        self.api_url = api_url
        self.temporal_address = temporal_address
        self.samples = samples
        self.rate = rate
        self.run_id = run_id
        self.source = source
        self.records: list[DocRecord] = []
        self._loop = LoopThread("traffic")
        self._stop_submitting = threading.Event()
        self._give_up_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._submitter: Future[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._temporal: Client | None = None

    def connect(self) -> None:
        if not self._loop.alive:
            self._loop.start()
            self._loop.run(self._connect())

    def start(self) -> None:
        self.connect()
        self._submitter = asyncio.run_coroutine_threadsafe(self._submit_loop(), self._loop.loop)

    def warm_up(self, task_queue: str, rounds: int = 2) -> Future[int]:
        """Run every sample `rounds` times straight through the Temporal workers (not the
        API: the router's metrics and the ledger never see them); the future gives how
        many succeeded.

        A worker process pays one-time costs on its first documents (the workflow sandbox,
        lazily imported parsers: the first HTML parse alone took 282 ms here). In a cluster
        the workers run long before a rollout starts; here they start a minute before it,
        and the first steps judge p99 over a handful of documents, so one cold document
        would decide the verdict.
        """
        self.connect()
        return asyncio.run_coroutine_threadsafe(self._warm_up(task_queue, rounds), self._loop.loop)

    async def _warm_up(self, task_queue: str, rounds: int) -> int:
        assert self._temporal is not None
        client, gate = self._temporal, asyncio.Semaphore(8)

        async def one(index: int, sample: Sample) -> bool:
            request = IngestDocumentInput(f"{self.run_id}-{index:03d}", "warmup", key=sample.key)
            async with gate:
                handle = await start_ingestion(client, request, task_queue)
                return (await handle.result()).succeeded

        jobs = [one(i, s) for i, s in enumerate(self.samples * rounds)]
        return sum(await asyncio.gather(*jobs))

    def stop_submitting(self) -> None:
        self._stop_submitting.set()
        if self._submitter is not None:
            self._submitter.result(timeout=10)

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted document is terminal; False if time ran out."""
        self.stop_submitting()
        self._give_up_at = time.monotonic() + timeout
        return self._loop.run(self._wait_all(self._give_up_at), timeout=timeout + 15)

    def close(self) -> None:
        if self._loop.alive:
            self._stop_submitting.set()
            with contextlib.suppress(Exception):
                self._loop.run(self._close(), timeout=15)
            self._loop.stop()

    def snapshot(self) -> list[DocRecord]:
        return list(self.records)

    async def _connect(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._temporal = await Client.connect(self.temporal_address)

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _submit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), 0
        while not self._stop_submitting.is_set():
            delay = started + sent / self.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(min(delay, 0.2))
                continue
            sample = self.samples[sent % len(self.samples)]
            record = DocRecord(
                f"{self.run_id}-{sent:06d}", sample.kind, sample.key, time.monotonic()
            )
            self.records.append(record)
            task = asyncio.create_task(self._carry(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            sent += 1

    async def _wait_all(self, deadline: float) -> bool:
        while self._tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                return False
            await asyncio.wait(list(self._tasks), timeout=remaining)
        return True

    def _giving_up(self) -> bool:
        return self._give_up_at is not None and time.monotonic() > self._give_up_at

    async def _carry(self, record: DocRecord) -> None:
        if not await self._submit(record):
            return
        if record.path == "temporal":
            await self._follow_workflow(record)
        else:
            await self._follow_status(record)

    async def _submit(self, record: DocRecord) -> bool:
        assert self._session is not None
        body = {"document_id": record.document_id, "source": self.source, "key": record.key}
        while not self._giving_up():
            try:
                async with self._session.post(f"{self.api_url}/v1/documents", json=body) as r:
                    if r.status == 202:
                        answer: dict[str, Any] = await r.json()
                        record.path, record.accepted_at = answer["path"], time.monotonic()
                        return True
                    if r.status not in (429, 503):  # a refused request is not retried
                        self._finish(record, "failed", f"HTTP {r.status}")
                        return False
                    wait = min(float(r.headers.get("Retry-After", "1")), 1.0)
            except (aiohttp.ClientError, TimeoutError):
                wait = RETRY_SECONDS
            record.refusals += 1
            await asyncio.sleep(wait)
        return False

    async def _follow_workflow(self, record: DocRecord) -> None:
        assert self._temporal is not None
        handle = self._temporal.get_workflow_handle(
            workflow_id_for(self.source, record.document_id), result_type=IngestDocumentResult
        )
        while True:
            try:
                result = await handle.result()
            except WorkflowFailureError as exc:  # the workflow reports failures as results
                self._finish(record, "failed", type(exc.cause).__name__)
                return
            except RPCError:
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._finish(record, result.status.value, result.error_type)
            return

    async def _follow_status(self, record: DocRecord) -> None:
        assert self._session is not None
        url = f"{self.api_url}/v1/documents/{self.source}/{record.document_id}"
        while True:
            await asyncio.sleep(STATUS_POLL_SECONDS)
            try:
                async with self._session.get(url) as response:
                    if response.status != 200:
                        continue
                    view: dict[str, Any] = await response.json()
            except (aiohttp.ClientError, TimeoutError):
                continue
            if view.get("status") in TERMINAL:
                self._finish(record, str(view["status"]), view.get("error_type"))
                return

    @staticmethod
    def _finish(record: DocRecord, status: str, error_type: str | None) -> None:
        record.status, record.error_type = status, error_type
        record.finished_at = time.monotonic()

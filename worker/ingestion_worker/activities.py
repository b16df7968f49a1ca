"""The pipeline steps as Temporal activities.

Each activity takes one frozen dataclass and returns one. Pipeline errors become
ApplicationErrors whose `type` is the error class name, non-retryable when the
error is permanent, so retry policies and the workflow's failure report speak
the same names as the legacy path.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ingestion_worker.codec import decode_chunks, encode_chunks
from ingestion_worker.errors import IngestionError
from ingestion_worker.faults import Fault, FaultSource
from ingestion_worker.metrics import observe_step
from ingestion_worker.models import (
    Blob,
    CleanupInput,
    DownloadInput,
    DownloadResult,
    EmbedInput,
    EmbedResult,
    ExtractEntitiesInput,
    ExtractEntitiesResult,
    ParseInput,
    ParseResult,
    WriteGraphInput,
    WriteGraphResult,
)
from ingestion_worker.parsing import detect_content_type
from ingestion_worker.pipeline import Pipeline

P = ParamSpec("P")
R = TypeVar("R")


class InjectedFaultError(IngestionError):
    """A failure planted on purpose (FAULT_FAILURE_RATE or FAULT_FILE) to exercise rollbacks."""

    retryable = False


def as_application_errors(step: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Measure the step and translate pipeline errors into typed ApplicationErrors."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                with observe_step(step):
                    return fn(*args, **kwargs)
            except IngestionError as exc:
                raise ApplicationError(
                    str(exc), type=type(exc).__name__, non_retryable=not exc.retryable
                ) from exc

        return wrapper

    return decorate


class IngestionActivities:
    """Activities bound to the clients of one worker process."""

    def __init__(self, pipeline: Pipeline, faults: FaultSource | None = None) -> None:
        self._p = pipeline
        self._limit = pipeline.settings.inline_limit_bytes
        settings = pipeline.settings
        self._faults = faults or FaultSource(
            Fault(settings.fault_failure_rate, settings.fault_delay_seconds), settings.fault_file
        )

    @activity.defn(name="download_document")
    @as_application_errors("download")
    def download(self, request: DownloadInput) -> DownloadResult:
        bucket, key = self._p.locate(
            request.document_id, request.source, request.bucket, request.key
        )
        fetched = self._p.fetch(
            bucket, key, keep_limit=self._limit, on_progress=_heartbeat_progress
        )
        content_type = detect_content_type(key, fetched.declared_content_type)
        if fetched.data is not None:
            content = Blob(inline=base64.b64encode(fetched.data).decode("ascii"), size=fetched.size)
        else:  # too large to carry: the source object itself is the reference
            content = Blob(bucket=bucket, key=key, etag=fetched.etag, size=fetched.size)
        return DownloadResult(bucket, key, content_type, fetched.size, fetched.sha256, content)

    @activity.defn(name="parse_document")
    @as_application_errors("parse")
    def parse(self, request: ParseInput) -> ParseResult:
        doc = request.document
        data = self._p.store.read_blob_bytes(doc.content, inline_is_base64=True)
        parsed = self._p.parse(data, doc.key, doc.content_type)
        text = self._p.store.text_blob(parsed.text, self._limit, f"{request.artifact_prefix}/text")
        return ParseResult(text=text, char_count=len(parsed.text), content_hash=parsed.content_hash)

    @activity.defn(name="extract_entities")
    @as_application_errors("extract_entities")
    def extract_entities(self, request: ExtractEntitiesInput) -> ExtractEntitiesResult:
        text = self._p.store.read_blob_text(request.text)
        return ExtractEntitiesResult(self._p.extract_entities(text))

    @activity.defn(name="generate_embeddings")
    @as_application_errors("embed")
    def embed(self, request: EmbedInput) -> EmbedResult:
        text = self._p.store.read_blob_text(request.text)
        chunks = self._p.embed(text)
        blob = self._p.store.text_blob(
            encode_chunks(chunks), self._limit, f"{request.artifact_prefix}/chunks.json"
        )
        embedder = self._p.embedder
        return EmbedResult(blob, len(chunks), embedder.model, embedder.dimensions)

    @activity.defn(name="write_graph")
    @as_application_errors("write_graph")
    def write_graph(self, request: WriteGraphInput) -> WriteGraphResult:
        with keep_alive():
            return self._write_graph(request)

    def _write_graph(self, request: WriteGraphInput) -> WriteGraphResult:
        self._inject_fault(request)
        chunks = decode_chunks(self._p.store.read_blob_text(request.chunks))
        self._p.write(
            document_id=request.document_id,
            source=request.source,
            parsed_type=request.content_type,
            parsed_hash=request.content_hash,
            chunks=chunks,
            entities=request.entities,
            on_progress=_heartbeat,
        )
        return WriteGraphResult(chunk_count=len(chunks), entity_count=len(request.entities))

    @activity.defn(name="cleanup_artifacts")
    def cleanup(self, request: CleanupInput) -> int:
        return self._p.store.delete_blobs(request.blobs)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.download,
            self.parse,
            self.extract_entities,
            self.embed,
            self.write_graph,
            self.cleanup,
        ]

    def _inject_fault(self, request: WriteGraphInput) -> None:
        """Chaos for demos and drills: fail or slow a share of documents on this path only.

        The fault is read per document (see faults.py), so FAULT_FILE switches it live."""
        fault = self._faults.current()
        deadline = time.monotonic() + fault.delay_seconds
        while time.monotonic() < deadline:  # heartbeating, so a killed worker is noticed
            _heartbeat()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if fault.fails(request.document_id):
            raise InjectedFaultError(f"injected fault for {request.source}/{request.document_id}")


@contextlib.contextmanager
def keep_alive(every: float = 2.0) -> Iterator[None]:
    """Heartbeat from a side thread while the step blocks in I/O.

    The heartbeat timeout is there to notice a dead worker quickly; a live one
    waiting on a slow database must not be mistaken for dead.
    """
    if not activity.in_activity():
        yield
        return
    done = threading.Event()
    context = contextvars.copy_context()

    def beat() -> None:
        while not done.wait(every):
            context.run(activity.heartbeat)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _heartbeat_progress(read_bytes: int) -> None:
    if activity.in_activity():
        activity.heartbeat(read_bytes)


def _heartbeat() -> None:
    if activity.in_activity():
        activity.heartbeat()

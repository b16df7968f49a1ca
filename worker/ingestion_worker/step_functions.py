"""What each pipeline step does: one function per step, `(pipeline, state) -> state`.

The Temporal activities (activities.py) and the legacy path (legacy.py) both run the
steps through `run_step`, so the two paths cannot drift apart: same parsing, same
entities, same chunks, same vectors, same graph. A function reads what earlier steps put
in the `DocumentState` and returns it with its own results added; large results go
inline up to the pipeline's inline limit and to the artifact bucket beyond it.

`run_inline` runs the table's inline group (steps.INLINE_STEPS) in sequence, for the
workflow's one local activity on small documents.

Heartbeats are sent only inside a Temporal activity; on the legacy path they are no-ops.
The graph write heartbeats from a keep-alive thread, never per row: a heartbeat is a call
into the worker's event loop, and the write is made of dozens of small statements.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from temporalio import activity

from ingestion_worker.codec import decode_chunks, encode_chunks
from ingestion_worker.errors import AboveInlineLimit
from ingestion_worker.models import Blob, DocumentState, DownloadResult, InlineResult, StepTiming
from ingestion_worker.parsing import detect_content_type
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.steps import INLINE_STEPS, Step, lighten

StepFunction = Callable[[Pipeline, DocumentState], DocumentState]


class MissingInputError(RuntimeError):
    """A step ran before the step that produces what it reads: the table is out of order."""


def _required[T](value: T | None, name: str) -> T:
    if value is None:
        raise MissingInputError(f"no {name} in the document state yet")
    return value


def download(p: Pipeline, state: DocumentState) -> DocumentState:
    """Stream the source object, hashing it; small ones travel inline, large ones by reference."""
    request = state.request
    bucket, key = p.locate(request.document_id, request.source, request.bucket, request.key)
    fetched = p.fetch(bucket, key, keep_limit=p.inline_limit, on_progress=_heartbeat_progress)
    content_type = detect_content_type(key, fetched.declared_content_type)
    if fetched.data is not None:
        content = Blob(inline=base64.b64encode(fetched.data).decode("ascii"), size=fetched.size)
    else:  # too large to carry: the source object itself is the reference
        content = Blob(bucket=bucket, key=key, etag=fetched.etag, size=fetched.size)
    found = DownloadResult(bucket, key, content_type, fetched.size, fetched.sha256)
    return replace(state, download=found, content=content)


def parse(p: Pipeline, state: DocumentState) -> DocumentState:
    document = _required(state.download, "download")
    data = p.store.read_blob_bytes(_required(state.content, "content"), inline_is_base64=True)
    parsed = p.parse(data, document.key, document.content_type)
    text = p.store.text_blob(parsed.text, p.inline_limit, f"{state.artifact_prefix}/text")
    return replace(state, text=text, char_count=len(parsed.text), content_hash=parsed.content_hash)


def extract_entities(p: Pipeline, state: DocumentState) -> DocumentState:
    text = p.store.read_blob_text(_required(state.text, "text"))
    return replace(state, entities=p.extract_entities(text))


def embed(p: Pipeline, state: DocumentState) -> DocumentState:
    text = p.store.read_blob_text(_required(state.text, "text"))
    chunks = p.embed(text)
    blob = p.store.text_blob(
        encode_chunks(chunks), p.inline_limit, f"{state.artifact_prefix}/chunks.json"
    )
    return replace(state, chunks=blob, chunk_count=len(chunks))


def write_graph(p: Pipeline, state: DocumentState) -> DocumentState:
    """MERGE the document graph; heartbeats from a side thread while Neo4j answers."""
    document = _required(state.download, "download")
    with keep_alive():
        chunks = decode_chunks(p.store.read_blob_text(_required(state.chunks, "chunks")))
        p.write(
            document_id=state.request.document_id,
            source=state.request.source,
            parsed_type=document.content_type,
            parsed_hash=_required(state.content_hash, "content_hash"),
            chunks=chunks,
            entities=state.entities,
        )
    return state


#: Step name -> its function; every entry of steps.STEPS has one (a unit test checks).
STEP_FUNCTIONS: dict[str, StepFunction] = {
    "download": download,
    "parse": parse,
    "extract_entities": extract_entities,
    "embed": embed,
    "write_graph": write_graph,
}


def run_step(step: Step, pipeline: Pipeline, state: DocumentState) -> DocumentState:
    """One step, then its result without the bulky content no later step reads."""
    return lighten(step, STEP_FUNCTIONS[step.name](pipeline, state))


def run_inline(
    pipeline: Pipeline,
    state: DocumentState,
    run: Callable[[Step, Pipeline, DocumentState], DocumentState] = run_step,
) -> InlineResult:
    """The inline group's steps in sequence, or none of them for a document larger than
    INLINE_DOCUMENT_BYTES (it is left to the chain of activities, unread)."""
    grouped = pipeline.for_inline_group()
    if not grouped.refuse_above:
        return InlineResult(state, completed=0)
    timings: list[StepTiming] = []
    spilled: list[Blob] = []
    for step in INLINE_STEPS:
        started = time.perf_counter()
        try:
            state = run(step, grouped, state)
        except AboveInlineLimit:
            return InlineResult(state, completed=0)
        finally:
            timings.append(StepTiming(step.name, time.perf_counter() - started))
        spilled.extend(b for b in state.artifacts() if b not in spilled)
    return InlineResult(state, len(INLINE_STEPS), timings, spilled)


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
    # A local activity (the inline group) has no heartbeat: its workflow task stands for it.
    if activity.in_activity() and not activity.info().is_local:
        activity.heartbeat(read_bytes)

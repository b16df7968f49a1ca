"""The pipeline's steps, in order, written once: what each is called, how Temporal runs it,
how the status moves around it and what it reads.

Both paths walk this table. The workflow (workflows.py) runs each entry as the Temporal
activity it names, with its attempts, timeouts and backoff; the legacy path (legacy.py)
calls the same step functions in process with the same attempts and backoff. Every step
takes and returns a `DocumentState`, so adding a step is one entry here plus its function
in step_functions.py (and the fields it adds to DocumentState).

The leading steps marked `inline` form the inline group: for a document up to
INLINE_DOCUMENT_BYTES the workflow runs them as one local activity (`INLINE`), which
saves a server round trip and a workflow task per step; a larger document runs them one
activity each, its payloads kept in S3. The legacy path ignores the grouping.

Retries are decided here too, once for both paths (`retry_delay`): a step's own attempt
count for ordinary failures, and the dependency's retry budget for an outage.

Neutral on purpose: nothing here does I/O or imports an I/O client (an import contract in
pyproject.toml checks that), so the workflow reads the table inside Temporal's sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from ingestion_worker.models import DocumentState, IngestionStatus

#: Each retry waits twice as long as the one before, up to the step's max_interval.
BACKOFF_COEFFICIENT = 2.0


@dataclass(frozen=True, kw_only=True)
class ActivityOptions:
    """How one Temporal activity is run; the legacy path honours the retry part too."""

    #: The step's name in timings, metrics (legacy_<name> on the legacy path) and logs.
    name: str
    #: The Temporal activity type the worker registers and the workflow calls.
    activity: str
    attempts: int
    #: Start-to-close timeout of one attempt.
    timeout: timedelta
    #: Local activities skip two server round trips; for CPU-only steps.
    local: bool = False
    heartbeat: timedelta | None = None
    initial_interval: timedelta = timedelta(seconds=1)
    max_interval: timedelta = timedelta(seconds=10)


def retry_delay(
    options: ActivityOptions, failures: int, elapsed: float, budget: float | None, jitter: float
) -> float | None:
    """Seconds to wait before the next attempt after `failures` failed ones, or None to give up.

    `budget` is the retry budget of the dependency whose outage failed the step (None for
    any other retryable failure): while less than `budget` seconds have `elapsed` since the
    first failure, the step is retried, however many attempts that takes; otherwise the
    step's `attempts` bound it. The wait doubles from `initial_interval` up to
    `max_interval`, and `jitter` (0 <= jitter < 1) keeps between half and all of it, so
    that documents failed by the same outage do not retry in lockstep.
    """
    if budget is not None:
        if elapsed >= budget:
            return None
    elif failures >= options.attempts:
        return None
    base = options.initial_interval.total_seconds() * BACKOFF_COEFFICIENT ** (failures - 1)
    return min(base, options.max_interval.total_seconds()) * (0.5 + jitter / 2)


def _always(_: DocumentState) -> bool:
    return True


def _writes_graph(state: DocumentState) -> bool:
    return state.request.write_graph


@dataclass(frozen=True, kw_only=True)
class Step(ActivityOptions):
    """One pipeline step: how it runs, and where the document's status is around it."""

    #: The status once the step is done (or skipped).
    status_after: IngestionStatus
    #: The status while the step runs; None keeps the one before.
    status_before: IngestionStatus | None = None
    #: The DocumentState fields the step's function reads: bulky ones that no later step
    #: reads are dropped from its result (see `lighten`).
    reads: frozenset[str] = frozenset()
    #: False skips the step for this document (its status_after still applies).
    runs_for: Callable[[DocumentState], bool] = _always
    #: Part of the inline group (the leading steps so marked; see `INLINE`).
    inline: bool = False


STEPS: tuple[Step, ...] = (
    Step(
        name="download",
        activity="download_document",
        attempts=3,
        timeout=timedelta(minutes=5),
        heartbeat=timedelta(seconds=30),
        status_before=IngestionStatus.DOWNLOADING,
        status_after=IngestionStatus.DOWNLOADED,
        reads=frozenset({"request"}),
        inline=True,
    ),
    Step(
        name="parse",
        activity="parse_document",
        attempts=3,
        timeout=timedelta(minutes=5),
        local=True,
        status_after=IngestionStatus.PARSED,
        reads=frozenset({"download", "content", "artifact_prefix"}),
        inline=True,
    ),
    Step(
        name="extract_entities",
        activity="extract_entities",
        attempts=3,
        timeout=timedelta(minutes=2),
        local=True,
        status_after=IngestionStatus.ENTITIES_EXTRACTED,
        reads=frozenset({"text"}),
        inline=True,
    ),
    Step(  # rate limits are transient: more attempts, quick first retry
        name="embed",
        activity="generate_embeddings",
        attempts=5,
        timeout=timedelta(minutes=5),
        local=True,
        initial_interval=timedelta(seconds=0.5),
        status_after=IngestionStatus.EMBEDDINGS_GENERATED,
        reads=frozenset({"text", "artifact_prefix"}),
        inline=True,
    ),
    Step(  # shadow runs compute everything but leave the graph alone
        name="write_graph",
        activity="write_graph",
        attempts=3,
        timeout=timedelta(minutes=5),
        heartbeat=timedelta(seconds=10),
        status_after=IngestionStatus.COMPLETED,
        reads=frozenset({"request", "download", "content_hash", "entities", "chunks"}),
        runs_for=_writes_graph,
    ),
)

#: Deletes the artifacts a workflow spilled; not a pipeline step (no status, no legacy run).
CLEANUP = ActivityOptions(
    name="cleanup", activity="cleanup_artifacts", attempts=3, timeout=timedelta(minutes=1)
)

#: The leading steps marked `inline`, run as one local activity for small documents.
INLINE_STEPS: tuple[Step, ...] = tuple(step for step in STEPS if step.inline)

#: The local activity that runs INLINE_STEPS. A failure inside it is retried with the options
#: of the step that failed; these apply only when the activity itself times out. Its timeout
#: covers the whole group (download, parse, entities, embed of up to INLINE_DOCUMENT_BYTES).
INLINE = ActivityOptions(
    name="inline", activity="run_inline_steps", attempts=3, timeout=timedelta(minutes=5)
)

_BY_NAME = {step.name: step for step in STEPS}
_FIELDS = frozenset(f.name for f in fields(DocumentState))


def step_named(name: str) -> Step:
    """The table entry called `name` (KeyError naming the known ones otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no step {name!r}; steps: {', '.join(_BY_NAME)}") from None


def lighten(step: Step, state: DocumentState) -> DocumentState:
    """`state` after `step`, without the bulky content it read that no later step reads.

    Only what the step read is dropped, never what it produced: the workflow must see
    every spilled artifact in some step's result to delete it at the end.
    """
    later = STEPS[STEPS.index(step) + 1 :]
    still_read = {name for s in later for name in s.reads}
    dropped: dict[str, Any] = {
        name: None for name in DocumentState.BULKY if name in step.reads and name not in still_read
    }
    return replace(state, **dropped) if dropped else state


def _check_table() -> None:
    """A misspelt field in `reads` would silently keep payloads large, and a gap in the inline
    group would run steps out of order: refuse both at import."""
    for step in STEPS:
        unknown = step.reads - _FIELDS
        if unknown:
            raise ValueError(f"step {step.name} reads unknown fields {sorted(unknown)}")
    if STEPS[: len(INLINE_STEPS)] != INLINE_STEPS:
        raise ValueError("the inline steps must be the leading steps of the table")


_check_table()

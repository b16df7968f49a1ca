"""The pipeline's steps, in order, written once: what each is called, how Temporal runs it,
how the status moves around it and what it reads.

Both paths walk this table. The workflow (workflows.py) runs each entry as the Temporal
activity it names, with its attempts, timeouts and backoff; the legacy path (legacy.py)
calls the same step functions in process with the same attempts and backoff. Every step
takes and returns a `DocumentState`, so adding a step is one entry here plus its function
in step_functions.py (and the fields it adds to DocumentState).

Neutral on purpose: nothing here does I/O or imports an I/O client (an import contract in
pyproject.toml checks that), so the workflow reads the table inside Temporal's sandbox.
Room is left for grouping steps later (e.g. download..embed as one local activity for
small documents): a group would be a further field of `Step`, walked by the workflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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

    def retry_delays(self) -> Iterator[float]:
        """Seconds to wait before each retry (attempts - 1 of them), as Temporal would."""
        delay = self.initial_interval.total_seconds()
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * BACKOFF_COEFFICIENT, self.max_interval.total_seconds())


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
    ),
    Step(
        name="parse",
        activity="parse_document",
        attempts=3,
        timeout=timedelta(minutes=5),
        local=True,
        status_after=IngestionStatus.PARSED,
        reads=frozenset({"download", "content", "artifact_prefix"}),
    ),
    Step(
        name="extract_entities",
        activity="extract_entities",
        attempts=3,
        timeout=timedelta(minutes=2),
        local=True,
        status_after=IngestionStatus.ENTITIES_EXTRACTED,
        reads=frozenset({"text"}),
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
    """A misspelt field in `reads` would silently keep payloads large: refuse it at import."""
    for step in STEPS:
        unknown = step.reads - _FIELDS
        if unknown:
            raise ValueError(f"step {step.name} reads unknown fields {sorted(unknown)}")


_check_table()

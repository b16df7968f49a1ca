"""The pipeline steps as Temporal activities: one per entry of the step table, and one for
the table's inline group.

Each step activity takes the `DocumentState` and returns the next one; the work is the
step's function (step_functions.py), shared with the legacy path. The inline activity
runs the group's steps in sequence (a local activity for small documents) and returns an
`InlineResult`. The activity names come from the table, which is how the workflow calls
them without importing this module (or the I/O clients behind it).

Pipeline errors become ApplicationErrors whose `type` is the error class name,
non-retryable when the error is permanent, so the workflow's failure report speaks the
same names as the legacy path. Their details are `(step name, retry budget)`: the
workflow retries with the options of the step that failed (it may be inside the inline
group) and, for a dependency's outage, for the budget this worker's settings give it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ingestion_worker.errors import IngestionError
from ingestion_worker.metrics import observe_step
from ingestion_worker.models import CleanupInput, DocumentState, InlineResult
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.step_functions import run_inline, run_step
from ingestion_worker.steps import CLEANUP, INLINE, STEPS, Step

Activity = Callable[[DocumentState], DocumentState]


class IngestionActivities:
    """Activities bound to the clients of one worker process."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._p = pipeline
        self._steps: dict[str, Activity] = {step.name: self._bind(step) for step in STEPS}

    def step(self, name: str) -> Activity:
        """The activity of the step called `name` (for tests and tools)."""
        return self._steps[name]

    @activity.defn(name=INLINE.activity)
    def inline(self, state: DocumentState) -> InlineResult:
        """The inline group's steps in one go; none of them for a document over the limit."""
        return run_inline(self._p, state, run=self._observed)

    @activity.defn(name=CLEANUP.activity)
    def cleanup(self, request: CleanupInput) -> int:
        return self._p.store.delete_blobs(request.blobs)

    def all(self) -> list[Callable[..., Any]]:
        """Everything a worker registers: one activity per step, the inline group, cleanup."""
        return [*self._steps.values(), self.inline, self.cleanup]

    def _observed(self, step: Step, pipeline: Pipeline, state: DocumentState) -> DocumentState:
        try:
            with observe_step(step.name):
                return run_step(step, pipeline, state)
        except IngestionError as exc:
            raise ApplicationError(
                str(exc),
                step.name,
                pipeline.retry_budget(exc),
                type=type(exc).__name__,
                non_retryable=not exc.retryable,
            ) from exc

    def _bind(self, step: Step) -> Activity:
        def run(state: DocumentState) -> DocumentState:
            return self._observed(step, self._p, state)

        run.__name__ = run.__qualname__ = step.name
        return activity.defn(name=step.activity)(run)

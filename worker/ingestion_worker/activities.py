"""The pipeline steps as Temporal activities: one per entry of the step table.

Each activity takes the `DocumentState` and returns the next one; the work is the step's
function (step_functions.py), shared with the legacy path. The activity names come from
the table, which is how the workflow calls them without importing this module (or the
I/O clients behind it). Pipeline errors become ApplicationErrors whose `type` is the
error class name, non-retryable when the error is permanent, so retry policies and the
workflow's failure report speak the same names as the legacy path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ingestion_worker.errors import IngestionError
from ingestion_worker.metrics import observe_step
from ingestion_worker.models import CleanupInput, DocumentState
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.step_functions import run_step
from ingestion_worker.steps import CLEANUP, STEPS, Step

Activity = Callable[[DocumentState], DocumentState]


class IngestionActivities:
    """Activities bound to the clients of one worker process."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._p = pipeline
        self._steps: dict[str, Activity] = {step.name: self._bind(step) for step in STEPS}

    def step(self, name: str) -> Activity:
        """The activity of the step called `name` (for tests and tools)."""
        return self._steps[name]

    @activity.defn(name=CLEANUP.activity)
    def cleanup(self, request: CleanupInput) -> int:
        return self._p.store.delete_blobs(request.blobs)

    def all(self) -> list[Callable[..., Any]]:
        """Everything a worker registers: one activity per step, and the cleanup."""
        return [*self._steps.values(), self.cleanup]

    def _bind(self, step: Step) -> Activity:
        pipeline = self._p

        def run(state: DocumentState) -> DocumentState:
            try:
                with observe_step(step.name):
                    return run_step(step, pipeline, state)
            except IngestionError as exc:
                raise ApplicationError(
                    str(exc), type=type(exc).__name__, non_retryable=not exc.retryable
                ) from exc

        run.__name__ = run.__qualname__ = step.name
        return activity.defn(name=step.activity)(run)

"""One status shape for both paths, built from whatever knows the document's state.

A client reading `GET /v1/documents/{source}/{id}` must not care which path ingested the
document, so every source of a status (a legacy run's progress in this process, the
journal's terminal record, the workflow's `get_status` query, a closed workflow's result)
is turned into the same `StatusView`: the path, the status (or "retrying: <reason>" while
a failed step waits for its next attempt), the step in progress, the time each step took
so far and, for a failure, its error type and message.

The step in progress is derived from the status through the step table (`steps.STEPS`),
the one place that says which status surrounds which step, so both paths name it alike.
Timings are of pipeline steps only: the workflow's artifact cleanup is not a step.
Pure functions only, no I/O.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ingestion_worker.models import (
    IngestDocumentResult,
    IngestionPath,
    IngestionStatus,
    IngestionStatusView,
    StepTiming,
)
from ingestion_worker.steps import STEPS

TERMINAL = frozenset({IngestionStatus.COMPLETED.value, IngestionStatus.FAILED.value})
RETRYING_PREFIX = "retrying: "
_STEP_NAMES = frozenset(step.name for step in STEPS)
#: status -> the step that runs while the document has it (None: no step runs).
_STEP_DURING: dict[str, str | None] = {}
for _index, _step in enumerate(STEPS):
    if _step.status_before is not None:
        _STEP_DURING[_step.status_before.value] = _step.name
    _next = STEPS[_index + 1].name if _index + 1 < len(STEPS) else None
    _STEP_DURING.setdefault(_step.status_after.value, _next)


@dataclass(frozen=True)
class StatusView:
    """What a status read answers, whichever path the document took."""

    path: str
    #: An IngestionStatus value, or "retrying: <error type>: <message> (...)".
    status: str
    #: The pipeline step running now; for a failed document the last step it ran.
    step: str | None = None
    timings: tuple[tuple[str, float], ...] = ()
    error_type: str | None = None
    error_message: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def body(self, source: str, document_id: str) -> dict[str, Any]:
        """The JSON answer (the `Status` schema of the OpenAPI document)."""
        return {
            "document_id": document_id,
            "source": source,
            "path": self.path,
            "status": self.status,
            "step": self.step,
            "timings": [{"step": name, "seconds": round(s, 6)} for name, s in self.timings],
            "error_type": self.error_type,
            "error_message": self.error_message,
        }


def step_during(status: str, timings: Iterable[tuple[str, float]] = ()) -> str | None:
    """The step a document with `status` is in: the table's step around that status; for
    a failure, the last step that was timed (the one it failed in); None when none runs."""
    if status == IngestionStatus.FAILED.value:
        names = [name for name, _ in timings]
        return names[-1] if names else None
    return _STEP_DURING.get(status)


def step_timings(timings: Iterable[StepTiming]) -> tuple[tuple[str, float], ...]:
    """(step, seconds) of the pipeline steps among `timings`, in order."""
    return tuple((t.step, t.seconds) for t in timings if t.step in _STEP_NAMES)


def from_result(result: IngestDocumentResult) -> StatusView:
    """A finished document, from the result either path returns."""
    timings = step_timings(result.timings)
    status = result.status.value
    return StatusView(
        path=result.path.value,
        status=status,
        step=step_during(status, timings),
        timings=timings,
        error_type=result.error_type,
        error_message=result.error_message,
    )


def from_query(view: IngestionStatusView) -> StatusView:
    """A workflow's own answer to `get_status` (open, or closed and replayed)."""
    timings = step_timings(view.timings)
    status = view.status.value
    return StatusView(
        path=IngestionPath.TEMPORAL.value,
        status=view.retrying or status,
        step=step_during(status, timings),
        timings=timings,
        error_type=view.error_type,
        error_message=view.error_message,
    )


def closed_failure(error_type: str, message: str) -> StatusView:
    """A workflow that closed without a result (terminated, timed out, cancelled)."""
    return StatusView(
        path=IngestionPath.TEMPORAL.value,
        status=IngestionStatus.FAILED.value,
        error_type=error_type,
        error_message=message,
    )


def encode_timings(timings: Iterable[tuple[str, float]]) -> str:
    """Timings as the journal stores them (JSON pairs)."""
    return json.dumps([[name, seconds] for name, seconds in timings])


def decode_timings(text: str | None) -> tuple[tuple[str, float], ...]:
    if not text:
        return ()
    return tuple((str(name), float(seconds)) for name, seconds in json.loads(text))


def from_record(
    path: str, status: str, error_type: str | None, error_message: str | None, timings: str | None
) -> StatusView:
    """A journal record: a finished document's result, or an accepted one's acceptance."""
    steps = decode_timings(timings)
    return StatusView(path, status, step_during(status, steps), steps, error_type, error_message)


class LegacyProgress:
    """A legacy run's progress as its status callback reports it (from the run's thread).

    A step's time runs from the status that opens it to the status that closes it (the
    table's status_after); while a retry waits, the status is the retry's reason and the
    step stays the one being retried, as the workflow's query says."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._status = IngestionStatus.PENDING.value
        self._retrying: str | None = None
        self._timings: list[tuple[str, float]] = []
        self._since: float | None = None

    def __call__(self, status: object) -> None:
        text, now = str(status), self._clock()
        with self._lock:
            if text.startswith(RETRYING_PREFIX):
                self._retrying = text
                return
            step = _STEP_DURING.get(self._status)
            if self._since is not None and step is not None and text != self._status:
                self._timings.append((step, now - self._since))
            self._since = now
            self._status, self._retrying = text, None

    def view(self) -> StatusView:
        with self._lock:
            timings = tuple(self._timings)
            return StatusView(
                path=IngestionPath.LEGACY.value,
                status=self._retrying or self._status,
                step=step_during(self._status, timings),
                timings=timings,
            )


#: What `?wait=` accepts (also the OpenAPI document's pattern).
WAIT_PATTERN = r"^([0-9]{1,6}(\.[0-9]{1,3})?)(ms|s|m)?$"
_WAIT = re.compile(WAIT_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def parse_wait(text: str, longest: float) -> float:
    """`?wait=` as seconds: "30s", "500ms", "1m" or a bare number of seconds; capped at
    `longest`. ValueError with the accepted forms for anything else."""
    match = _WAIT.fullmatch(text)
    if match is None:
        raise ValueError(
            f"wait={text!r} is not a duration: a number of seconds, or with a unit (500ms, 30s, 1m)"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(3)]
    return min(seconds, longest)

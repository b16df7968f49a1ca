"""The step table: every step has its function and its activity, the status walks the
pipeline's order, bulky content leaves the state once no later step reads it, the inline
group leads the table, and retries wait as `retry_delay` says (both paths use it)."""

from __future__ import annotations

from typing import Any

import pytest
from ingestion_worker.activities import IngestionActivities
from ingestion_worker.models import Blob, DocumentState, IngestDocumentInput, IngestionStatus
from ingestion_worker.step_functions import STEP_FUNCTIONS
from ingestion_worker.steps import (
    CLEANUP,
    INLINE,
    INLINE_STEPS,
    STEPS,
    lighten,
    retry_delay,
    step_named,
)
from temporalio import activity


def test_every_step_has_one_function_and_one_activity_named_by_the_table() -> None:
    assert list(STEP_FUNCTIONS) == [step.name for step in STEPS]
    activities = IngestionActivities(pipeline=object())  # type: ignore[arg-type]
    names = [activity._Definition.must_from_callable(fn).name for fn in activities.all()]
    assert names == [*(step.activity for step in STEPS), INLINE.activity, CLEANUP.activity]


def test_the_inline_group_is_everything_before_the_graph_write() -> None:
    assert [step.name for step in INLINE_STEPS] == [
        "download",
        "parse",
        "extract_entities",
        "embed",
    ]
    assert STEPS[len(INLINE_STEPS)].name == "write_graph"


def test_the_status_walks_the_pipeline_in_order() -> None:
    walked = [IngestionStatus.PENDING]
    for step in STEPS:
        walked += [s for s in (step.status_before, step.status_after) if s is not None]
    assert walked == [s for s in IngestionStatus if s != IngestionStatus.FAILED]


def _delays(name: str, jitter: float, budget: float | None = None) -> list[float]:
    """The waits before each retry of step `name`, failing at once every time."""
    waits: list[float] = []
    while delay := retry_delay(step_named(name), len(waits) + 1, sum(waits), budget, jitter):
        waits.append(delay)
    return waits


@pytest.mark.parametrize(
    ("name", "full"),
    [("download", [1.0, 2.0]), ("embed", [0.5, 1.0, 2.0, 4.0]), ("write_graph", [1.0, 2.0])],
)
def test_ordinary_failures_are_retried_for_the_steps_attempts_with_jitter(
    name: str, full: list[float]
) -> None:
    # given a step failing for a reason other than an outage: attempts - 1 retries, each
    # wait doubling, jitter keeping between half and all of it
    assert _delays(name, jitter=0.999999) == pytest.approx(full, rel=1e-5)
    assert _delays(name, jitter=0.0) == [d / 2 for d in full]


@pytest.mark.parametrize("budget", [60.0, 120.0])
def test_an_outage_is_retried_for_its_whole_budget_whatever_the_attempts(budget: float) -> None:
    # given a dependency that stays down: the step is retried beyond its 3 attempts, until
    # the budget has passed, each wait at most max_interval (10 s)
    for jitter in (0.0, 0.5, 0.999):
        waits = _delays("write_graph", jitter, budget)
        assert sum(waits[:-1]) < budget <= sum(waits)
        assert max(waits) <= 10.0
        assert len(waits) > step_named("write_graph").attempts


def _full() -> DocumentState:
    blob = Blob(inline="x", size=1)
    request = IngestDocumentInput("d", "s")
    return DocumentState(request, "p", content=blob, text=blob, chunks=blob)


@pytest.mark.parametrize(
    ("name", "dropped"),
    [
        ("download", set()),
        ("parse", {"content"}),  # the raw bytes: nobody after parse reads them
        ("extract_entities", set()),  # embed still reads the text
        ("embed", {"text"}),
        ("write_graph", {"chunks"}),
    ],
)
def test_a_step_drops_the_bulky_content_no_later_step_reads(name: str, dropped: set[str]) -> None:
    after = lighten(step_named(name), _full())
    gone = {f for f in DocumentState.BULKY if getattr(after, f) is None}
    assert gone == dropped


def test_only_the_graph_write_is_skipped_for_shadow_runs() -> None:
    shadow = DocumentState(IngestDocumentInput("d", "s", write_graph=False), "p")
    skipped = [step.name for step in STEPS if not step.runs_for(shadow)]
    assert skipped == ["write_graph"]


def test_spilled_artifacts_are_text_and_chunks_never_the_source_document() -> None:
    reference: dict[str, Any] = {"bucket": "b", "key": "k", "size": 1}
    state = DocumentState(
        IngestDocumentInput("d", "s"),
        "p",
        content=Blob(**reference),
        text=Blob(**{**reference, "key": "p/text"}),
        chunks=Blob(inline="[]"),
    )
    assert [b.key for b in state.artifacts()] == ["p/text"]

"""The demo's story check: every way the story can fail is named, on recorded timelines."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from ingestion_sandbox.demo.timeline import (
    RolloutEvent,
    Timeline,
    back_to_zero_at,
    check_story,
    detection_seconds,
)
from ingestion_sandbox.demo.traffic import DocRecord, Tally, tally

ROLLBACK = "errorRate 0.18 > 0.05; routing 50% -> 0%"


def told() -> Timeline:
    """A run in which everything happened as the demo tells it."""
    return Timeline(
        weights=[(10.0, 0), (12.0, 10), (20.0, 50), (27.5, 0), (41.0, 10), (48.0, 50), (65.0, 100)],
        events=[
            RolloutEvent(12.2, "Normal", "Started", "0% -> 10%"),
            RolloutEvent(20.1, "Normal", "StepAdvanced", "10% -> 50%"),
            RolloutEvent(27.9, "Warning", "RolledBack", ROLLBACK),
            RolloutEvent(41.2, "Normal", "Retry", "0% -> 10%"),
            RolloutEvent(48.1, "Normal", "StepAdvanced", "10% -> 50%"),
            RolloutEvent(65.1, "Normal", "StepAdvanced", "50% -> 100%"),
            RolloutEvent(71.0, "Normal", "RolloutCompleted", "rollout completed at 100%"),
        ],
        fault_injected_at=23.0,
        fault_cleared_at=28.0,
        retried_at=40.5,
        first_injected_failure_at=25.0,
        final_phase="Completed",
        documents=Tally(
            submitted=500,
            accepted=500,
            succeeded={"legacy": 330, "temporal": 160},
            failed_injected={"temporal": 10},
        ),
    )


def test_the_told_story_passes_and_its_detection_time_is_measured() -> None:
    t = told()
    assert check_story(t) == []
    assert back_to_zero_at(t) == 27.5
    assert detection_seconds(t) == pytest.approx(2.5)


def test_the_sequential_judges_rollback_message_names_the_error_rate_too() -> None:
    t = told()
    sequential = "error rate 0.25 [0.073, 0.5] after 32 documents > 0.05; routing 50% -> 0%"
    t.events[2] = RolloutEvent(27.9, "Warning", "RolledBack", sequential)
    assert check_story(t) == []
    t.events[2] = RolloutEvent(27.9, "Warning", "RolledBack", "latency p90 temporal 3s > 2x")
    assert any("does not name errorRate" in p for p in check_story(t))


def _drop_events(reason: str, after: float = 0.0) -> Callable[[Timeline], None]:
    def change(t: Timeline) -> None:
        t.events = [e for e in t.events if not (e.reason == reason and e.at >= after)]

    return change


def _set(**fields: object) -> Callable[[Timeline], None]:
    def change(t: Timeline) -> None:
        for name, value in fields.items():
            setattr(t, name, value)

    return change


def _spurious_rollback(t: Timeline) -> None:
    t.events.insert(1, RolloutEvent(15.0, "Warning", "RolledBack", "latencyRatio 7.4 > 6"))
    t.weights.insert(2, (15.0, 0))


def _rollback_names(message: str) -> Callable[[Timeline], None]:
    def change(t: Timeline) -> None:
        for event in t.events:
            if event.reason == "RolledBack":
                event.message = message

    return change


def _rolled_back_after_retry(t: Timeline) -> None:
    t.events.append(RolloutEvent(44.0, "Warning", "RolledBack", "latencyRatio 6.04 > 6"))


def _lost(t: Timeline) -> None:
    t.documents.unfinished = 3


CASES = {
    "walk never reached 50%": (
        _set(weights=[(10.0, 0), (12.0, 10), (27.5, 0), (41.0, 10), (65.0, 100)]),
        "chapter 1 (walk 10% -> 50%): routing never went 10% then 50%",
    ),
    "rolled back before the fault": (_spurious_rollback, "rolled back before any fault"),
    "fault never injected": (_set(fault_injected_at=None), "the fault was never injected"),
    "no rollback after the fault": (
        _drop_events("RolledBack"),
        "no RolledBack Event after the fault was injected",
    ),
    "rollback for another metric": (
        _rollback_names("latencyRatio 9 > 6; routing 50% -> 0%"),
        "does not name errorRate",
    ),
    "the fault hit no document": (
        lambda t: setattr(t.documents, "failed_injected", {}),
        "no Temporal document failed from the injected fault",
    ),
    "routing never back to 0%": (
        _set(weights=[(10.0, 0), (12.0, 10), (20.0, 50), (65.0, 100)]),
        "routing never returned to 0%",
    ),
    "never retried": (_set(retried_at=None), "the rollout was never retried"),
    "retried before clearing": (
        _set(fault_cleared_at=None),
        "retried before the fault was cleared",
    ),
    "rolled back after the retry": (_rolled_back_after_retry, "rolled back again after the retry"),
    "never completed": (
        _drop_events("RolloutCompleted"),
        "no RolloutCompleted Event after the retry",
    ),
    "ended in another phase": (_set(final_phase="Progressing"), "ended in phase Progressing"),
    "never 100% after retry": (
        _set(weights=[(10.0, 0), (12.0, 10), (20.0, 50), (27.5, 0), (41.0, 10), (48.0, 50)]),
        "never reached 100% after the retry",
    ),
    "documents lost": (_lost, "3 of 500 documents lost"),
    "nothing on the legacy path": (
        lambda t: t.documents.succeeded.pop("legacy"),
        "no document was ingested on the legacy path",
    ),
    "stopped early": (
        _set(notes=["gave up waiting for 50% after 120s"]),
        "the demo stopped early: gave up waiting for 50%",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_is_named(case: str) -> None:
    change, expected = CASES[case]
    t = told()
    change(t)
    problems = check_story(t)
    assert any(expected in p for p in problems), problems


def test_a_recorded_timeline_can_be_checked_again_from_its_json() -> None:
    t = told()
    _spurious_rollback(t)
    again = Timeline.from_json(json.loads(json.dumps(t.to_json())))
    assert again == t
    assert check_story(again) == check_story(t)


def test_weights_are_recorded_only_when_they_change() -> None:
    t = Timeline()
    assert t.record_weight(1.0, 0)
    assert not t.record_weight(2.0, 0)
    assert t.record_weight(3.0, 10)
    assert t.weights == [(1.0, 0), (3.0, 10)]


def test_the_tally_separates_injected_failures_from_losses() -> None:
    records = [
        DocRecord("a", "pdf", "k", 0.0, 0.1, "legacy", 0.3, "completed"),
        DocRecord("b", "txt", "k", 0.0, 0.1, "temporal", 0.5, "completed"),
        DocRecord("c", "txt", "k", 0.0, 0.1, "temporal", 0.5, "failed", "InjectedFaultError"),
        DocRecord("d", "md", "k", 0.0, 0.1, "temporal", 0.5, "failed", "GraphWriteError"),
        DocRecord("e", "md", "k", 0.0, 0.1, "temporal", refusals=2),  # accepted, never finished
        DocRecord("f", "md", "k", 0.0, refusals=5),  # never accepted
    ]
    t = tally(records)
    assert (t.submitted, t.accepted, t.unfinished, t.refusals) == (6, 5, 2, 7)
    assert t.succeeded == {"legacy": 1, "temporal": 1}
    assert t.failed_injected == {"temporal": 1}
    assert t.failed_other == {"temporal": 1}
    assert t.other_errors == {"GraphWriteError": 1}
    assert t.by_format == {"pdf": 1, "txt": 2, "md": 3}

"""The replay loop (replay/engine.py) over measurements given instant by instant: the
operator's own decide/next_action/status projection make the moves, so the timeline,
the per-rule summary and the comparison of two specs follow from the spec's timers and
limits. (Prometheus itself: tests/integration/whatif/.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ingestion_operator.analysis import Measurement
from ingestion_operator.replay.engine import Replay, merge_patch, replay
from ingestion_operator.replay.history import Grid, find_gaps
from ingestion_operator.replay.inputs import rollout_spec
from ingestion_operator.replay.report import (
    ASSUMED,
    NOTE,
    Context,
    comparison_json,
    differences,
    divergence,
    render_json,
    render_text,
    verdict_line,
)
from ingestion_operator.spec import Phase, RolloutSpec

START = datetime(2025, 6, 3, 14, 0, tzinfo=UTC)
STEP = 30


def healthy(error_rate: float = 0.01) -> dict[str, Measurement]:
    return {
        "sampleCount": Measurement(100.0),
        "errorRate": Measurement(error_rate),
        "latencyRatio": Measurement(1.0),
        "latencyDeltaSeconds": Measurement(0.0),
        "queueDepth": Measurement(0.0),
        "dbConnectionErrorsPerMinute": Measurement(0.0),
    }


def spec(**analysis: object) -> RolloutSpec:
    return rollout_spec(
        {"steps": [10, 50, 100], "stepDuration": "2m", "analysis": {"interval": "30s", **analysis}},
        "spec",
    )


def run(rollout: RolloutSpec, instants: int, at: Callable[[int], dict[str, Measurement]]) -> Replay:
    times = [START + timedelta(seconds=STEP * i) for i in range(instants)]
    return asyncio.run(replay(rollout, times, lambda index, _age: at(index)))


def moves(result: Replay) -> list[tuple[int, str, int, int]]:
    """(instant index, reason, from %, to %) of each timeline entry."""
    return [
        (int((m.at - START).total_seconds()) // STEP, m.reason, m.from_percentage, m.to_percentage)
        for m in result.timeline
    ]


def test_a_healthy_history_walks_every_step_on_the_operators_timers() -> None:
    # given healthy measurements throughout, 2-minute steps analysed every 30 s
    result = run(spec(), 20, lambda _: healthy())
    # then it starts at once, and each step advances after 2 minutes of passing analyses
    # (the first analysis of a step comes one instant after the step began)
    assert moves(result) == [
        (0, "Started", 0, 10),
        (5, "StepAdvanced", 10, 50),
        (10, "StepAdvanced", 50, 100),
        (15, "RolloutCompleted", 100, 100),
    ]
    assert result.final is not None and result.final.phase == Phase.COMPLETED
    # and the stored status is the operator's projection (history included)
    assert [h["toPercentage"] for h in result.status["history"]] == [10, 50, 100, 100]
    assert result.status["phase"] == "Completed"
    # every rule passed at every analysis, one an instant from the first after the start
    # to the completing one (a completed rollout is not analysed)
    assert len(result.analyses) == 15
    assert result.summary()["errorRate"] == {"Pass": 15, "Fail": 0, "Inconclusive": 0, "Error": 0}


def test_a_breach_rolls_back_at_the_first_failing_analysis_naming_the_metric() -> None:
    # given an incident from instant 8 (during the 50% step)
    result = run(spec(), 20, lambda i: healthy(0.2 if i >= 8 else 0.01))
    # then it rolls back there, not before, and says which metric broke which limit
    assert moves(result)[-1] == (8, "RolledBack", 50, 0)
    rollback = result.timeline[-1]
    assert rollback.type == "Warning"
    assert rollback.message == "errorRate 0.2 > 0.05; routing 50% -> 0%"
    # and the operator keeps analysing after a rollback, as the live one does
    assert result.summary()["errorRate"]["Fail"] == 12


def test_analysis_errors_pause_then_a_pass_resumes() -> None:
    # given Prometheus failing every query from instant 3 to 8
    failed = {name: Measurement(error="Prometheus at http://p unreachable") for name in healthy()}
    result = run(spec(), 12, lambda i: failed if 3 <= i <= 8 else healthy())
    # then 4 errors are tolerated (consecutiveErrorLimit), the 5th pauses, a pass resumes
    assert moves(result) == [
        (0, "Started", 0, 10),
        (7, "AnalysisErrorPaused", 10, 10),
        (9, "Resumed", 10, 10),
    ]
    assert result.summary()["queueDepth"]["Error"] == 6


def test_comparing_two_limits_shows_where_their_decisions_differ() -> None:
    # given an error rate that creeps up from instant 6: 4%, then 6% from instant 9
    def creeping(i: int) -> dict[str, Measurement]:
        return healthy(0.06 if i >= 9 else 0.04 if i >= 6 else 0.01)

    loose, tight = (
        run(spec(), 14, creeping),
        run(spec(thresholds={"maxErrorRate": 0.03}), 14, creeping),
    )
    # then the tighter limit rolls back 3 instants earlier, and only that differs
    found = differences(loose, tight)
    assert [(d.a is None, d.b is None) for d in found] == [(True, False), (False, True)]
    assert found[0].b is not None and found[0].b.reason == "RolledBack"
    assert (found[0].at - START).total_seconds() == 6 * STEP
    split = divergence(loose, tight)
    assert split is not None and split[1].phase == Phase.ROLLED_BACK
    assert verdict_line(loose, tight) == "both ended RolledBack; B got there 90s earlier"
    context = Context("ingestionrollout/r", "A", "http://p", "", START, START, STEP, 1)
    assert comparison_json(loose, tight, context, context)["firstDivergence"] == (
        "2025-06-03T14:03:00Z"
    )


def test_the_report_says_what_a_replay_is() -> None:
    result = run(spec(), 8, lambda _: healthy())
    context = Context("ingestionrollout/r", "", "http://p", "", START, START, STEP, 3)
    text = render_text(result, context)
    assert NOTE in text and ASSUMED in text
    assert "StepAdvanced   10% -> 50%" in text
    assert "RULE                          PASS   FAIL   INCONCLUSIVE   ERROR" in text
    assert "errorRate                     7      0      0              0" in text
    assert text.splitlines()[-1].startswith(
        "Outcome: Progressing at 50% since 2025-06-03T14:02:30Z"
    )
    shown = render_json(result, context)
    assert (shown["note"], shown["assumed"]) == (NOTE, ASSUMED)
    assert shown["timeline"][0]["reason"] == "Started"
    assert shown["rules"]["errorRate"]["Pass"] == 7
    assert shown["final"] == {
        "at": "2025-06-03T14:03:30Z",
        "percentage": 50,
        "phase": "Progressing",
    }


def test_gaps_are_runs_of_instants_where_a_required_rule_has_no_data() -> None:
    grid = Grid(0, 5 * STEP, STEP)
    present, absent = Measurement(0.0), Measurement(None)
    windowed = {
        "errorRate": [present, absent, absent, present, present, present],
        "queueDepth": [present, present, present, present, absent, present],
        "latencyRatio": [present] * 6,
        "latencyDeltaSeconds": [present] * 6,
        "dbConnectionErrorsPerMinute": [present] * 6,
    }
    gaps = find_gaps(grid, windowed, frozenset())
    assert [(g.instants, g.names) for g in gaps] == [(2, ("errorRate",)), (1, ("queueDepth",))]
    assert str(gaps[0]) == (
        "no data for errorRate from 1970-01-01T00:00:30Z to 1970-01-01T00:01:00Z (2 instants)"
    )
    # an optional rule without data is not a gap: the operator does not need it
    assert [g.names for g in find_gaps(grid, windowed, frozenset({"queueDepth"}))] == [
        ("errorRate",)
    ]


def test_merge_patch_removes_nulls_and_merges_objects() -> None:
    stored = {"phase": "Progressing", "healthySince": "t", "lastAnalysis": {"at": "a", "x": 1}}
    patched = merge_patch(stored, {"healthySince": None, "lastAnalysis": {"at": "b"}})
    assert patched == {"phase": "Progressing", "lastAnalysis": {"at": "b", "x": 1}}

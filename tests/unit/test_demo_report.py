"""The demo's outputs: the summary, the chart and the live panel, from recorded data."""

from __future__ import annotations

import json
from pathlib import Path

from ingestion_sandbox.demo.monitor import (
    PanelState,
    Sample,
    judged_values,
    render_line,
    render_panel,
)
from ingestion_sandbox.demo.report import (
    latency_ratios,
    summarize,
    summary_text,
    write_chart,
    write_summary,
)
from ingestion_sandbox.demo.timeline import RolloutEvent, Timeline
from ingestion_sandbox.demo.traffic import Tally
from PIL import Image, ImageStat


def recorded() -> tuple[Timeline, list[Sample]]:
    t = Timeline(
        weights=[(0.0, 0), (5.0, 10), (15.0, 50), (22.0, 0), (35.0, 10), (45.0, 50), (60.0, 100)],
        events=[
            RolloutEvent(5.0, "Normal", "Started", "0% -> 10%"),
            RolloutEvent(15.0, "Normal", "StepAdvanced", "10% -> 50%"),
            RolloutEvent(22.3, "Warning", "RolledBack", "errorRate 0.2 > 0.05; routing 50% -> 0%"),
            RolloutEvent(35.0, "Normal", "Retry", "0% -> 10%"),
            RolloutEvent(66.0, "Normal", "RolloutCompleted", "rollout completed at 100%"),
        ],
        fault_injected_at=18.0,
        fault_cleared_at=23.0,
        retried_at=34.5,
        first_injected_failure_at=19.5,
        final_phase="Completed",
        documents=Tally(submitted=540, accepted=540, succeeded={"legacy": 300, "temporal": 230}),
    )
    samples = []
    for second in range(70):
        weight = [w for at, w in t.weights if at <= second][-1]
        faulty = 18 <= second < 30
        sample = Sample(
            at=float(second),
            weight=weight,
            phase="Progressing",
            rate={"temporal": 8 * weight / 100, "legacy": 8 * (100 - weight) / 100},
            error_rate={"temporal": 0.4 if faulty else 0.0, "legacy": 0.0},
            p99={"temporal": 0.45, "legacy": 0.12},
            backlog=0.0,
            workers_wanted=2,
            workers_running=2,
            judged={"latencyRatio": 3.0 if second < 40 else 3.5, "errorRate": 0.0},
        )
        samples.append(sample)
    return t, samples


def test_the_chart_is_a_readable_non_blank_png(tmp_path: Path) -> None:
    t, samples = recorded()
    path = write_chart(samples, t, tmp_path / "chart.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= 800 and image.size[1] >= 600
        extrema = ImageStat.Stat(image.convert("L")).extrema[0]
        assert extrema[0] < 100 < 200 < extrema[1]  # dark lines on a light background


ANALYSIS = {"judge": "threshold", "thresholds": {"maxLatencyRatio": 2.0}}


def test_the_summary_reports_the_story_and_explains_the_latency_threshold(tmp_path: Path) -> None:
    t, samples = recorded()
    summary = summarize(t, samples, [], ANALYSIS, {"story_seconds": 70.0})
    text = write_summary(summary, tmp_path)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["result"] == "ok"
    assert saved["documents"]["lost"] == 0
    assert "errorRate" in saved["rollback_event"]
    assert saved["detection_seconds"] == 2.5
    assert saved["fault_to_rollback_seconds"] == 4.0
    assert saved["latency"]["measured_ratio_max"] == 3.5
    assert saved["judge"] == "threshold" and saved["analysis"]["alpha"] is None
    assert saved["analysis"]["min_latency_delta_seconds"] == 0.5  # the CRD's default
    assert (tmp_path / "summary.txt").read_text().strip() == text
    assert "Judge: threshold; maxErrorRate 0.05; latency rule: Temporal p99 > 2x legacy" in text
    assert "max 3.5x" in text
    assert "Temporal p99 - legacy p99 over the panel's window median 0.33s, max 0.33s" in text
    assert "the story happened as told" in text
    lines = text.splitlines()
    fault_line = next(i for i, line in enumerate(lines) if "fault on" in line)
    rollback_line = next(i for i, line in enumerate(lines) if "RolledBack" in line)
    assert fault_line < rollback_line  # the timeline is in time order


def test_a_failed_story_lists_its_problems() -> None:
    t, samples = recorded()
    summary = summarize(t, samples, ["chapter 2: no rollback"], ANALYSIS, {})
    assert summary["result"] == "failed"
    assert "- chapter 2: no rollback" in summary_text(summary)


def test_only_healthy_samples_count_for_the_latency_ratio() -> None:
    t, samples = recorded()
    ratios = latency_ratios(samples, t)
    # fault window (18-34.5 s) and 0%/100% samples are left out
    assert len(ratios) == len([s for s in samples if (5 <= s.at < 18) or (35 <= s.at < 60)])


def test_the_operators_judged_values_are_read_from_the_status() -> None:
    status = {
        "lastAnalysis": {
            "metrics": [
                {"name": "errorRate", "value": 0.02},
                {"name": "latencyRatio", "value": None},
            ]
        }
    }
    assert judged_values(status) == {"errorRate": 0.02}
    assert judged_values({}) == {}


def test_the_panel_shows_phase_weight_paths_backlog_workers_and_events() -> None:
    _, samples = recorded()
    state = PanelState(
        elapsed=30.0,
        run_dir=".demo/x",
        rollout="ingestion-migration",
        status={"phase": "RolledBack", "stepLabel": "0/3", "lastAnalysis": {"verdict": "Fail"}},
        sample=samples[20],
        documents={"submitted": 100, "finished": 95},
        events=["+22.3s Warning RolledBack: errorRate 0.2 > 0.05"],
        story=["+18.0s Chapter 2: fault"],
        fault='{"failureRate": 0.5}',
        workers=(2, 2, 2),
    )
    panel = render_panel(state)
    for expected in ("phase RolledBack", "weight 50%", "40.0%", "450 ms", "120 ms", "backlog 0.0",
                     "2 running", "RolledBack: errorRate", "Chapter 2", "failureRate"):  # fmt: skip
        assert expected in panel, expected
    line = render_line(state)
    assert "\n" not in line and "temporal err 40.0%" in line


def test_the_panel_shows_the_sequential_judges_evidence() -> None:
    _, samples = recorded()
    bounds = "error rate 0 [0, 0.11] after 32 documents inconclusive (limit 0.05)"
    metrics = [
        {"name": "errorRate", "verdict": "Inconclusive", "documents": 32, "message": bounds},
        {"name": "queueDepth", "verdict": "Pass", "message": "queueDepth 0 <= 1000"},
    ]
    state = PanelState(
        elapsed=70.0, run_dir="x", rollout="r", sample=samples[10], documents={}, events=[],
        status={"phase": "Progressing", "lastAnalysis": {"metrics": metrics}}, story=[],
        fault="-", workers=(2, 2, 2),
    )  # fmt: skip
    assert f"  {bounds}" in render_panel(state).splitlines()
    assert "queueDepth 0" not in render_panel(state)  # a level has no evidence to show
    assert render_line(state).endswith("| errorRate Inconclusive on 32 docs")


def test_the_summary_records_the_sequential_judge_and_its_settings() -> None:
    t, samples = recorded()
    analysis = {"judge": "sequential", "alpha": 0.05, "thresholds": {"latencyQuantile": 0.9}}
    summary = summarize(t, samples, [], analysis, {})
    assert summary["judge"] == "sequential"
    assert (summary["analysis"]["alpha"], summary["analysis"]["latency_quantile"]) == (0.05, 0.9)
    assert "Judge: sequential (alpha 0.05)" in summary_text(summary)
    assert "Temporal p90 > 2x legacy and more than 0.5s slower" in summary_text(summary)

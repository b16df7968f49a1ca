"""The kubectl plugin's views: the same columns as the CRD's printer columns, and a
detail view that tells the rollout's story. Pure rendering, no cluster.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from ingestion_operator.plugin import COLUMNS, age, parser, render_detail, render_list

CRD = Path(__file__).resolve().parents[2] / "crds" / "ingestionrollouts.yaml"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def rollout(name: str = "migration", **status: Any) -> dict[str, Any]:
    created = (NOW - timedelta(minutes=12)).isoformat().replace("+00:00", "Z")
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"targetPercentage": 100},
        "status": status,
    }


def test_columns_are_the_crds_printer_columns() -> None:
    crd = yaml.safe_load(CRD.read_text())
    printer = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert ("NAME", *(c["name"].upper() for c in printer)) == COLUMNS


@pytest.mark.parametrize(
    ("seconds", "shown"), [(5, "5s"), (59, "59s"), (60, "1m"), (7200, "2h"), (90000, "1d")]
)
def test_age_reads_like_kubectl(seconds: int, shown: str) -> None:
    created = (NOW - timedelta(seconds=seconds)).isoformat()
    assert age(created, NOW) == shown


def test_list_shows_one_aligned_row_per_rollout() -> None:
    # given two rollouts, one not yet reconciled
    items = [
        rollout(
            "a",
            phase="Progressing",
            currentPercentage=50,
            stepLabel="2/3",
            lastAnalysis={"verdict": "Pass"},
        ),
        rollout("bb"),
    ]
    # when listed
    lines = render_list(items, NOW).splitlines()
    # then the header and each row line up, with empty cells for missing status
    assert lines[0].split() == [
        "NAME",
        "PHASE",
        "WEIGHT",
        "STEP",
        "TARGET",
        "LAST",
        "VERDICT",
        "AGE",
    ]
    assert lines[1].split() == ["a", "Progressing", "50", "2/3", "100", "Pass", "12m"]
    assert lines[2].split() == ["bb", "100", "12m"]
    assert lines[0].index("WEIGHT") == lines[1].index("50")


def test_empty_namespace_says_so() -> None:
    assert render_list([], NOW) == "No IngestionRollouts found."


def test_detail_tells_why_and_what_was_measured() -> None:
    # given a rollout rolled back on its error rate
    obj = rollout(
        phase="RolledBack",
        currentPercentage=0,
        message="errorRate 0.5 > 0.05; routing 50% -> 0%",
        lastAnalysis={
            "at": "2026-11-29T11:59:00+00:00",
            "verdict": "Fail",
            "metrics": [
                {"name": "errorRate", "value": 0.5, "threshold": 0.05, "verdict": "Fail"},
                {"name": "queueDepth", "value": None, "threshold": 1000, "verdict": "Inconclusive"},
            ],
        },
        conditions=[{"type": "RolledBack", "status": "True", "reason": "RolledBack"}],
        history=[
            {
                "at": "2026-11-29T11:58:00+00:00",
                "fromPercentage": 50,
                "toPercentage": 0,
                "phase": "RolledBack",
                "reason": "RolledBack",
            }
        ],
    )
    # when shown
    text = render_detail(obj, NOW)
    # then the message, each metric against its threshold, conditions and moves appear
    assert "Message:  errorRate 0.5 > 0.05; routing 50% -> 0%" in text
    assert any(line.split() == ["errorRate", "0.5", "0.05", "Fail"] for line in text.splitlines())
    assert any(
        line.split() == ["queueDepth", "-", "1000", "Inconclusive"] for line in text.splitlines()
    )
    assert "50% -> 0%" in text and "RolledBack" in text


@pytest.mark.parametrize("command", ["promote", "abort", "retry", "pause", "resume"])
def test_every_command_needs_a_name(command: str) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args([command])
    assert parser().parse_args([command, "x"]).name == "x"


def test_detail_shows_why_each_metric_passed_or_failed_with_visible_comparisons() -> None:
    # given a latency ratio above its limit but within the floor, and a value just above 10
    obj = rollout(
        phase="Progressing",
        lastAnalysis={
            "at": "2026-11-29T11:59:00+00:00",
            "verdict": "Fail",
            "metrics": [
                {
                    "name": "latencyRatio",
                    "value": 3.0,
                    "threshold": 2.0,
                    "verdict": "Pass",
                    "message": "latencyRatio 3 > 2 but only p99 +0.08s <= 0.5s "
                    "(minLatencyDeltaSeconds)",
                },
                {
                    "name": "dbConnectionErrorsPerMinute",
                    "value": 10.0000001,
                    "threshold": 10,
                    "verdict": "Fail",
                },
            ],
        },
    )
    # when shown
    lines = render_detail(obj, NOW).splitlines()
    # then the floor's reason is printed, and 10.0000001 is not rounded to the threshold
    assert "  latencyRatio 3 > 2 but only p99 +0.08s <= 0.5s (minLatencyDeltaSeconds)" in lines
    assert ["dbConnectionErrorsPerMinute", "10.0000001", "10", "Fail"] in [x.split() for x in lines]


def test_detail_shows_the_sequential_judges_interval_and_documents() -> None:
    obj = rollout(
        lastAnalysis={
            "verdict": "Fail",
            "metrics": [
                {
                    "name": "errorRate",
                    "value": 0.071,
                    "threshold": 0.05,
                    "verdict": "Fail",
                    "lower": 0.055,
                    "upper": 0.094,
                    "documents": 412,
                    "message": "error rate 0.071 [0.055, 0.094] after 412 documents > 0.05",
                },
            ],
        },
    )
    lines = render_detail(obj, NOW).splitlines()
    assert ["errorRate", "0.071", "0.05", "Fail", "[0.055,", "0.094]", "n=412"] in [
        line.split() for line in lines
    ]
    assert "  error rate 0.071 [0.055, 0.094] after 412 documents > 0.05" in lines

"""The what-if replay against a real Prometheus holding a known past (whatif_history.py):
its reads answer as the live operator's instant queries would have, its decisions roll
back at a planted incident and not before (a tighter limit earlier, and `--compare` says
so), and bad input (an unreachable server, a range without data, a range with gaps, a
wrong --set path) ends in one line and exit code 1.
"""

from __future__ import annotations

import json
import random
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ingestion_operator import plugin
from ingestion_operator.analysis.evidence import HISTOGRAMS, count
from ingestion_operator.metricproviders import PrometheusProvider
from ingestion_operator.metricproviders.prometheus import batched, split_batch, to_measurement
from ingestion_operator.replay.promql import PROMETHEUS_2, EvidenceCounters, semantics_for
from ingestion_operator.spec import AnalysisSpec
from ingestion_sandbox.servers.common import free_port
from whatif_history import GAP, MINUTE, RESTARTS, Past, kubectl_replay, manifest, planted_past


@pytest.fixture(scope="module")
def past() -> Iterator[Past]:
    yield from planted_past()


def instant(url: str, query: str, at: int) -> Any:
    """`data.result` of an instant query evaluated at `at` (unix seconds)."""
    params = urllib.parse.urlencode({"query": query, "time": at})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as answer:
        return json.loads(answer.read())["data"]["result"]


def at(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def test_range_reads_answer_as_the_live_instant_queries(past: Past) -> None:
    # given the rollout's windowed queries (batched as the operator batches them)
    provider = PrometheusProvider(past.url, timeout=30)
    queries = provider.queries(AnalysisSpec(metric_labels={"job": "incident"}))
    # when they are read over the history at 30 s steps in range requests
    start, end = past.start + 5 * MINUTE, past.start + 75 * MINUTE
    read = provider.measure_range(queries, start, end, 30)
    # then at each instant they are what the batched instant query there answers
    for index in random.Random(7).sample(range(len(range(start, end + 1, 30))), 25):
        t = start + 30 * index
        live = split_batch(instant(past.url, batched(queries), t), queries)
        assert {name: values[index] for name, values in read.items()} == live, t


def test_the_evidence_since_any_step_start_is_prometheus_own_increase(past: Past) -> None:
    # given the raw counters of a history with two exporter restarts and a 10-minute gap
    provider = PrometheusProvider(past.url, timeout=30)
    spec = AnalysisSpec(metric_labels={"job": "gappy"})
    raw = {n: provider.raw_series(s, past.start - 1, past.start + 80 * MINUTE) for n, s in
           provider.evidence_selectors(spec).items()}  # fmt: skip
    assert all(not isinstance(series, str) for series in raw.values()), raw
    assert semantics_for(provider.version()) == PROMETHEUS_2  # Debian's prometheus 2.42
    counters = EvidenceCounters(raw, PROMETHEUS_2)  # type: ignore[arg-type]
    # when the increase since a step start is computed for ranges across the restarts and
    # the gap, starting on a scrape, in the gap, at the history's first sample, and at random
    s = past.start
    cases = [
        (s + RESTARTS[0] + 60, RESTARTS[0] + 60 - 15 * MINUTE),
        (s + GAP[1] + 30, 15 * MINUTE),
        (s + GAP[1] + 5, GAP[1] - GAP[0] - 65),
        (s + 70 * MINUTE, 70 * MINUTE),
        (s + RESTARTS[1] + 1, 45),
        (s + 30 * MINUTE, 30 * MINUTE - 15),
    ]
    rng = random.Random(11)
    for _ in range(30):
        t = rng.randrange(s + 60, s + 80 * MINUTE)
        cases.append((t, rng.randrange(1, t - s)))
    # then each is what Prometheus's increase() over that range answers there
    for t, age in cases:
        mine = counters.measure(t * 1000, age)
        for name, query in provider.evidence_queries(spec, age).items():
            live = to_measurement(instant(past.url, query, t), histogram=name in HISTOGRAMS)
            assert_same(mine[name], live, f"{name} at {t} over {age}s")


def assert_same(mine: Any, live: Any, what: str) -> None:
    """Equal up to float summation order, and equal as the whole counts the judge takes."""
    if live.buckets is not None:
        assert [b for b, _ in mine.buckets] == [b for b, _ in live.buckets], what
        for (_, ours), (_, theirs) in zip(mine.buckets, live.buckets, strict=True):
            assert ours == pytest.approx(theirs, rel=1e-12), what
        return
    if live.value is None:
        assert mine.value is None, what
        return
    assert mine.value == pytest.approx(live.value, rel=1e-12), what
    assert count(mine, what) == count(live, what), what


def test_an_incident_rolls_back_there_and_a_tighter_limit_earlier(
    past: Past, kubectl: str, tmp_path: Path
) -> None:
    # given a rollout over the incident's history, replayed from 5 minutes in
    rollout = manifest(tmp_path, "incident", past.url)
    chart = tmp_path / "replay.png"
    # when it is replayed as is and compared with a tighter error-rate limit, with a chart
    done = kubectl_replay(
        kubectl, "-f", str(rollout), "--from", str(past.start + 5 * MINUTE),
        "--to", str(past.start + 78 * MINUTE), "-o", "json", "--chart", str(chart),
        "--compare", "analysis.thresholds.maxErrorRate=0.03",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    a, b = shown["a"], shown["b"]
    # then both walk the same steps until the incident
    moves = [(m["reason"], m["fromPercentage"], m["toPercentage"]) for m in a["timeline"]]
    assert moves == [("Started", 0, 10), ("StepAdvanced", 10, 50), ("RolledBack", 50, 0)]
    assert a["timeline"][:2] == b["timeline"][:2]
    # and the default limit rolls back after the incident began, naming the metric
    rolled_a, rolled_b = a["timeline"][-1], b["timeline"][-1]
    assert past.incident < at(rolled_a["at"]) <= past.incident + 15 * MINUTE
    assert rolled_a["message"].startswith("errorRate 0.05") and "> 0.05" in rolled_a["message"]
    assert all(at(m["at"]) < past.incident for m in a["timeline"][:2])
    # and the tighter one earlier, but not before the incident either
    assert rolled_b["reason"] == "RolledBack" and "> 0.03" in rolled_b["message"]
    assert past.incident < at(rolled_b["at"]) < at(rolled_a["at"])
    # and the comparison names the two rollbacks as the difference, B's first
    assert [(d["a"] is None, d["b"] is None) for d in shown["differences"]] == [
        (True, False),
        (False, True),
    ]
    assert shown["firstDivergence"] == rolled_b["at"]
    assert shown["result"].startswith("both ended RolledBack; B got there")
    # and the rules were judged at every instant but the first, Fail only from the incident
    assert a["analyses"] == a["instants"] - 1
    assert a["rules"]["errorRate"]["Fail"] >= 1 and a["rules"]["queueDepth"]["Fail"] == 0
    # and the charts are PNGs
    for png in (chart, tmp_path / "replay-b.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_the_two_judges_compared_on_the_incident(
    past: Past, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the same rollout, analysed by the threshold judge
    rollout = manifest(
        tmp_path, "incident", past.url, analysis={"thresholds": {"latencyQuantile": 0.95}}
    )
    start, end = past.start + 5 * MINUTE, past.start + 78 * MINUTE
    # when it is compared with the sequential judge (a bare --compare: the other judge)
    code = plugin.main(
        ["replay", "-f", str(rollout), "--from", str(start), "--to", str(end), "--compare"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    # then both replays are shown, B counting evidence since the step began
    assert "A (as given): what-if replay" in out
    assert "B (analysis.judge=sequential): what-if replay" in out
    assert "increase() as Prometheus 2" in out
    assert "Where the decisions differ" in out and "Result: " in out
    # and neither judge rolls back before the incident
    for line in out.splitlines():
        if "RolledBack" in line and line[:4].isdigit():
            assert at(line.split()[0]) > past.incident, line


def replay_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = plugin.main(["replay", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_unreachable_prometheus_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = replay_main(
        capsys, "-f", str(manifest(tmp_path, "incident", url)), "--from", "now-1h"
    )
    assert (code, out) == (1, "")
    assert err == f"error: Prometheus at {url} unreachable: Connection refused\n"


def test_a_range_without_data_is_refused(
    past: Past, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = past.start - 3 * 60 * MINUTE
    code, _, err = replay_main(
        capsys, "-f", str(manifest(tmp_path, "incident", past.url)),
        "--from", str(before), "--to", str(before + 30 * MINUTE),
    )  # fmt: skip
    assert code == 1
    assert f"Prometheus at {past.url} has no data for this rollout's queries" in err


def test_a_range_with_gaps_is_refused_unless_allowed(
    past: Past, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the history with a 10-minute scrape gap
    rollout = str(manifest(tmp_path, "gappy", past.url))
    span = ["--from", str(past.start + 5 * MINUTE), "--to", str(past.start + 75 * MINUTE)]
    # when it is replayed across the gap, the error names where the data is missing
    code, out, err = replay_main(capsys, "-f", rollout, *span)
    assert (code, out) == (1, "")
    gap_from = datetime.fromtimestamp(past.start + GAP[0] + 2 * MINUTE, UTC)
    assert "the range has gaps: no data for " in err and "--allow-gaps" in err
    assert gap_from.isoformat().replace("+00:00", "Z")[:15] in err  # the gap's hour:minute
    # and with --allow-gaps it replays them as the operator saw them: Inconclusive
    code, out, err = replay_main(capsys, "-f", rollout, *span, "--allow-gaps", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["rules"]["errorRate"]["Inconclusive"] > 0


def test_an_invalid_set_path_through_kubectl(past: Past, kubectl: str, tmp_path: Path) -> None:
    done = kubectl_replay(
        kubectl, "-f", str(manifest(tmp_path, "incident", past.url)), "--from", "now-1h",
        "--set", "analysis.thresholds.maxErrorRat=0.03",
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(
        "error: --set 'analysis.thresholds.maxErrorRat=0.03': analysis.thresholds has no field"
    )
    assert "Traceback" not in done.stderr

"""The demo's setup: its flags, the rollout it applies, its sample documents, prerequisites."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from ingestion_sandbox.demo import prereqs
from ingestion_sandbox.demo.options import (
    DEFAULT_ROLLOUT,
    SEQUENTIAL,
    DemoOptions,
    defaults_for,
    deviations,
    parse_options,
    validate,
)
from ingestion_sandbox.demo.rollout import demo_rollout, names_of, write_rollout
from ingestion_sandbox.demo.samples import FORMATS, build_samples, pdf_document
from ingestion_worker.parsing import detect_content_type, parse_document
from pypdf import PdfReader

PROMETHEUS = "http://127.0.0.1:9999"


def example() -> dict:
    return yaml.safe_load(DEFAULT_ROLLOUT.read_text())


def test_every_interval_is_a_flag() -> None:
    o = parse_options(
        ["--step-seconds", "4", "--window-seconds", "12", "--analysis-interval-seconds", "2",
         "--hold-at-50-seconds", "9", "--timer-seconds", "0.5", "--scrape-interval", "250ms",
         "--rate", "5", "--max-latency-ratio", "8", "--output-dir", "/tmp/x"]
    )  # fmt: skip
    assert (o.step_seconds, o.window_seconds, o.analysis_interval_seconds) == (4, 12, 2)
    assert (o.hold_at_50_seconds, o.timer_seconds, o.scrape_interval) == (9, 0.5, "250ms")
    assert (o.rate, o.max_latency_ratio, o.output_dir) == (5.0, 8.0, Path("/tmp/x"))
    assert (o.judge, o.alpha, o.latency_quantile) == ("threshold", None, None)


def test_the_sequential_judge_has_its_own_defaults_and_flags_still_win() -> None:
    o = parse_options(["--judge", "sequential", "--rate", "4"])
    assert o.judge == "sequential"
    assert o.rate == 4.0  # given
    assert (o.alpha, o.latency_quantile) == (SEQUENTIAL["alpha"][0], 0.9)  # its defaults
    assert o.step_seconds == DemoOptions().step_seconds  # not in SEQUENTIAL: the same
    said = deviations(o)
    assert len(said) == len(SEQUENTIAL) and any(line.startswith("alpha 0.05: ") for line in said)
    assert deviations(parse_options([])) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fault_rate": 0.0}, "--fault-rate"),
        ({"window_seconds": 1}, "--window-seconds"),
        ({"healthy_seconds": 20.0, "hold_at_50_seconds": 15}, "--healthy-seconds"),
        ({"min_workers": 5, "max_workers": 4}, "--min-workers"),
        ({"rate": 0.0}, "--rate"),
        ({"judge": "vibes"}, "--judge"),
    ],
)
def test_flags_that_cannot_tell_the_story_are_refused(overrides: dict, message: str) -> None:
    assert any(message in p for p in validate(DemoOptions(**overrides)))


def test_the_demo_applies_the_example_with_only_the_fast_knobs_changed() -> None:
    base = example()
    rollout = demo_rollout(base, DemoOptions(), PROMETHEUS)
    spec, analysis = rollout["spec"], rollout["spec"]["analysis"]
    assert spec["steps"] == base["spec"]["steps"] == [10, 50, 100]
    assert spec["stepDuration"] == "6s"
    assert spec["stepOverrides"] == [{"step": 50, "duration": "15s"}]
    assert spec["workers"] == [
        {"deploymentName": "ingestion-temporal-worker", "minReplicas": 2, "maxReplicas": 2}
    ]
    assert analysis["prometheusUrl"] == PROMETHEUS
    assert analysis["interval"] == "1s"
    assert (analysis["window"], analysis["minSampleCount"]) == ("20s", 4)
    assert analysis["judge"] == "threshold"
    # the product's thresholds, but the latency floor (options.DEMO_MIN_LATENCY_DELTA_SECONDS)
    floor = {"minLatencyDeltaSeconds": 2.0}
    assert analysis["thresholds"] == {**base["spec"]["analysis"]["thresholds"], **floor}
    assert analysis["thresholds"]["maxLatencyRatio"] == 2.0
    assert spec["routing"] == base["spec"]["routing"]
    assert base["spec"]["stepDuration"] == "10m"  # the example itself is untouched


def test_the_sequential_demo_changes_its_judge_and_only_the_stated_knobs() -> None:
    base = example()
    rollout = demo_rollout(base, defaults_for("sequential"), PROMETHEUS)
    analysis, thresholds = rollout["spec"]["analysis"], base["spec"]["analysis"]["thresholds"]
    assert (analysis["judge"], analysis["alpha"]) == ("sequential", 0.05)
    assert analysis["thresholds"] == {
        **thresholds,
        "latencyQuantile": 0.9,
        "minLatencyDeltaSeconds": 2.0,
    }
    assert analysis["thresholds"]["maxErrorRate"] == 0.05


def test_the_written_rollout_says_what_changed_and_names_come_from_it(tmp_path: Path) -> None:
    rollout = demo_rollout(example(), defaults_for("sequential"), PROMETHEUS)
    path = write_rollout(rollout, DEFAULT_ROLLOUT, tmp_path / "rollout.yaml")
    text = path.read_text()
    assert text.startswith("# rollout.yaml as the demo applies it")
    header = [line for line in text.splitlines() if line.startswith("#   spec.")]
    assert '#   spec.analysis.judge "sequential"' in header
    assert "#   spec.analysis.alpha 0.05" in header
    assert "#   spec.analysis.thresholds.latencyQuantile 0.9" in header
    assert not [line for line in header if "maxLatencyRatio" in line or "maxErrorRate" in line]
    assert yaml.safe_load(text) == rollout
    names = names_of(rollout)
    assert (names.rollout, names.deployment) == ("ingestion-migration", "ingestion-temporal-worker")
    assert (names.routing_configmap, names.routing_key) == (
        "ingestion-routing",
        "temporalPercentage",
    )


def test_a_rollout_without_a_50_percent_step_is_refused() -> None:
    base = example()
    base["spec"]["steps"] = [25, 100]
    with pytest.raises(ValueError, match="50% step"):
        demo_rollout(base, DemoOptions(), PROMETHEUS)


def test_an_invalid_rollout_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="invalid"):
        demo_rollout(example(), DemoOptions(max_latency_ratio=-1.0), PROMETHEUS)


def test_the_samples_cover_every_format_and_parse() -> None:
    samples = build_samples()
    assert {s.kind for s in samples} == set(FORMATS)
    assert len({s.key for s in samples}) == len(samples)
    for sample in samples:
        content_type = detect_content_type(sample.key, sample.content_type or None)
        text = parse_document(sample.body, content_type)
        assert len(text) > 2_500, sample.key
        assert "ORD-51234" in text or "INV-2024-0039" in text, sample.key


def test_the_hand_made_pdf_has_several_pages_that_pypdf_reads() -> None:
    body = pdf_document("Invoice", "Pay (soon) \\ please. " * 12)  # long: several pages
    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) >= 2
    assert "Pay (soon) \\ please." in reader.pages[0].extract_text()


def test_apt_is_used_only_as_root_on_debian_with_apt() -> None:
    assert prereqs.can_apt_install(is_root=True, debian=True, apt="/usr/bin/apt-get")
    assert not prereqs.can_apt_install(is_root=False, debian=True, apt="/usr/bin/apt-get")
    assert not prereqs.can_apt_install(is_root=True, debian=False, apt="/usr/bin/apt-get")
    assert not prereqs.can_apt_install(is_root=True, debian=True, apt="")


def test_a_missing_prometheus_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> str:
        raise prereqs.ServiceUnavailable("prometheus", "apt-get install prometheus")

    monkeypatch.setattr(prereqs, "_prometheus_binary", missing)
    with pytest.raises(prereqs.MissingPrerequisite, match="apt-get install prometheus"):
        prereqs.find_prometheus(install=False, say=print)


def test_a_missing_prometheus_is_installed_with_apt_when_possible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed: list[list[str]] = []

    def binary() -> str:
        if not installed:
            raise prereqs.ServiceUnavailable("prometheus", "hint")
        return "/usr/bin/prometheus"

    monkeypatch.setattr(prereqs, "_prometheus_binary", binary)
    monkeypatch.setattr(prereqs, "can_apt_install", lambda: True)
    said: list[str] = []
    found = prereqs.find_prometheus(True, said.append, run=lambda c: installed.append(c) or 0)
    assert found == "/usr/bin/prometheus"
    assert installed[-1] == prereqs.APT_INSTALL
    assert any("apt-get install" in line for line in said)

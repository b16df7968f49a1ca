"""What a user types into `kubectl ingestionrollout replay`, checked before any request:
times, steps, `--set` paths and values, manifests. Each mistake is one clear line and
exit code 1 from the plugin's main, never a traceback (these need no server: the
argument checks run before Prometheus is asked anything)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from ingestion_operator import plugin
from ingestion_operator.replay.errors import ReplayError
from ingestion_operator.replay.inputs import (
    load_manifest,
    parse_span,
    parse_time,
    rollout_spec,
    time_range,
    with_sets,
)

NOW = datetime(2025, 6, 10, 12, 0, 0, tzinfo=UTC)


def test_spans_and_times_in_the_forms_users_write() -> None:
    assert parse_span("30s") == 30
    assert parse_span("1h30m") == 5400
    assert parse_span("7d") == 7 * 86400
    assert parse_time("now-7d", NOW, "--from") == datetime(2025, 6, 3, 12, tzinfo=UTC)
    assert parse_time("now", NOW, "--to") == NOW
    assert parse_time("2025-06-03T14:00:00Z", NOW, "--from") == datetime(2025, 6, 3, 14, tzinfo=UTC)
    assert parse_time("2025-06-03T16:00:00+02:00", NOW, "--from") == datetime(
        2025, 6, 3, 14, tzinfo=UTC
    )
    assert parse_time("2025-06-03 14:00", NOW, "--from") == datetime(2025, 6, 3, 14, tzinfo=UTC)
    assert parse_time("1748959200", NOW, "--from") == datetime(2025, 6, 3, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_span("30"), "--step '30': use a duration such as 30s"),
        (lambda: parse_span("0s"), "must be at least 1s"),
        (lambda: parse_time("yesterday", NOW, "--from"), "--from 'yesterday': use RFC 3339"),
        (lambda: parse_time("now-3x", NOW, "--from"), "--from '3x': use a duration"),
    ],
)
def test_malformed_times_and_spans_say_what_is_accepted(call: object, message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        call()  # type: ignore[operator]


def test_ranges_must_lie_in_the_past_in_order_and_not_be_empty() -> None:
    earlier, later = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)
    assert time_range(earlier, later, NOW) == (int(earlier.timestamp()), int(later.timestamp()))
    with pytest.raises(ReplayError, match="--from 2025-06-02T00:00:00Z is after --to"):
        time_range(later, earlier, NOW)
    with pytest.raises(ReplayError, match="empty range: --from and --to are both"):
        time_range(earlier, earlier, NOW)
    with pytest.raises(ReplayError, match="is in the future"):
        time_range(earlier, datetime(2030, 1, 1, tzinfo=UTC), NOW)


def test_set_changes_the_spec_at_schema_checked_paths() -> None:
    # given a spec with a few fields
    spec = {"steps": [10, 100], "workers": [{"deploymentName": "w"}]}
    # when values are set at nested paths, a map key and a list index
    changed = with_sets(
        spec,
        [
            "analysis.thresholds.maxErrorRate=0.03",
            "analysis.judge=sequential",
            "analysis.metricLabels.job=ingestion",
            "workers.0.maxReplicas=3",
            "steps=[20, 50, 100]",
        ],
    )
    # then each lands typed where the CRD has it, and the input is untouched
    assert changed["analysis"]["thresholds"]["maxErrorRate"] == 0.03
    assert changed["analysis"]["judge"] == "sequential"
    assert changed["analysis"]["metricLabels"] == {"job": "ingestion"}
    assert changed["workers"][0] == {"deploymentName": "w", "maxReplicas": 3}
    assert changed["steps"] == [20, 50, 100]
    assert spec == {"steps": [10, 100], "workers": [{"deploymentName": "w"}]}
    parsed = rollout_spec(changed, "spec")
    assert parsed.analysis.thresholds["maxErrorRate"] == 0.03
    assert parsed.workers[0].max_replicas == 3


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "analysis.thresholds.maxErrorRat=0.03",
            r"analysis.thresholds has no field 'maxErrorRat'; known: latencyQuantile, "
            r"maxDbConnectionErrorsPerMinute, maxErrorRate",
        ),
        ("analysis.judge.kind=x", "analysis.judge has no fields"),
        ("workers.3.maxReplicas=2", r"workers is a list of 1; index it with 0..0"),
        ("analysis.judge", "use PATH=VALUE"),
        ("analysis.judge=", "no value"),
    ],
)
def test_an_invalid_set_names_the_path_and_what_exists(item: str, message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        with_sets({"workers": [{"deploymentName": "w"}]}, [item])


def test_a_set_value_the_crd_refuses_gives_admissions_reason() -> None:
    bad = with_sets({}, ["analysis.thresholds.maxErrorRate=fast"])
    with pytest.raises(ReplayError, match=r"invalid spec: spec.analysis.thresholds.maxErrorRate"):
        rollout_spec(bad, "--set")


def test_manifests_must_hold_one_rollout(tmp_path: Path) -> None:
    two = tmp_path / "two.yaml"
    rollout = {"apiVersion": "ingestion.apexmemory.io/v1alpha1", "kind": "IngestionRollout"}
    two.write_text(yaml.safe_dump_all([rollout, rollout]))
    with pytest.raises(ReplayError, match="expected one IngestionRollout, found 2"):
        load_manifest(str(two))
    with pytest.raises(ReplayError, match="No such file"):
        load_manifest(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [")
    with pytest.raises(ReplayError, match="not YAML"):
        load_manifest(str(broken))


def manifest(tmp_path: Path) -> str:
    path = tmp_path / "rollout.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "ingestion.apexmemory.io/v1alpha1",
                "kind": "IngestionRollout",
                "metadata": {"name": "r"},
                "spec": {"analysis": {"prometheusUrl": "http://127.0.0.1:9"}},
            }
        )
    )
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "now-1h", "--to", "now-2h"], "is after --to"),
        (["--from", "now-1h", "--to", "now-1h"], "empty range"),
        (["--from", "last week"], "--from 'last week': use RFC 3339"),
        (["--from", "now-1h", "--step", "fast"], "--step 'fast'"),
        (["--from", "now-1h", "--set", "analysis.nope=1"], "analysis has no field 'nope'"),
        (["--from", "now-1h", "--timeout", "0"], "--timeout must be > 0"),
        (["--from", "now-400d", "--step", "1s"], "instants at a step of 1s: at most 1000000"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    # given a rollout manifest whose Prometheus would refuse connections
    path = manifest(tmp_path)
    # when the replay is asked with a mistake in its arguments
    code = plugin.main(["replay", "-f", path, *args])
    # then it says what is wrong on one line of stderr, exits 1 and prints nothing else
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_a_name_and_a_file_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = plugin.main(["replay", "r", "-f", manifest(tmp_path), "--from", "now-1h"])
    assert code == 1
    assert "name a rollout in the cluster, or give -f rollout.yaml" in capsys.readouterr().err

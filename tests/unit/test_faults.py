"""The live fault source: environment defaults, a JSON file that overrides them and is
re-read when it changes (as a mounted ConfigMap does), and bad files ignored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ingestion_worker.activities import IngestionActivities, InjectedFaultError
from ingestion_worker.faults import Fault, FaultFileError, FaultSource, parse_fault
from ingestion_worker.models import Blob, WriteGraphInput
from ingestion_worker.settings import WorkerSettings

ENV = Fault(failure_rate=0.0, delay_seconds=0.0)


def write(path: Path, payload: object) -> None:
    """Replace the file the way the kubelet updates a ConfigMap mount (new inode)."""
    staging = path.with_suffix(".tmp")
    staging.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    os.replace(staging, path)


def test_without_a_file_the_environment_applies() -> None:
    source = FaultSource(Fault(0.25, 1.5), path=None)
    assert source.current() == Fault(0.25, 1.5)


def test_a_missing_file_means_the_environment(tmp_path: Path) -> None:
    source = FaultSource(Fault(0.1, 0.0), str(tmp_path / "absent.json"))
    assert source.current() == Fault(0.1, 0.0)


def test_the_file_overrides_and_missing_keys_keep_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "fault.json"
    write(path, {"failureRate": 0.5})
    source = FaultSource(Fault(0.0, 2.0), str(path))
    assert source.current() == Fault(0.5, 2.0)


def test_a_change_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "fault.json"
    write(path, {"failureRate": 0, "delaySeconds": 0})
    source = FaultSource(ENV, str(path))
    assert source.current() == ENV
    write(path, {"failureRate": 1.0, "delaySeconds": 0.5})
    assert source.current() == Fault(1.0, 0.5)
    write(path, {"failureRate": 0})
    assert source.current() == ENV


def test_a_symlinked_mount_is_followed(tmp_path: Path) -> None:
    # a ConfigMap volume: key -> ..data/key, and ..data is swapped atomically
    first, second = tmp_path / "v1", tmp_path / "v2"
    first.mkdir()
    second.mkdir()
    (first / "fault.json").write_text('{"failureRate": 0.2}')
    (second / "fault.json").write_text('{"failureRate": 0.7}')
    (tmp_path / "..data").symlink_to(first)
    (tmp_path / "fault.json").symlink_to(tmp_path / "..data" / "fault.json")
    source = FaultSource(ENV, str(tmp_path / "fault.json"))
    assert source.current().failure_rate == 0.2
    (tmp_path / "..data_tmp").symlink_to(second)
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert source.current().failure_rate == 0.7


def test_removing_the_file_goes_back_to_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "fault.json"
    write(path, {"failureRate": 1})
    source = FaultSource(Fault(0.05, 0.0), str(path))
    assert source.current().failure_rate == 1.0
    path.unlink()
    assert source.current() == Fault(0.05, 0.0)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        {"failureRate": 1.5},
        {"failureRate": -0.1},
        {"failureRate": "0.5"},
        {"failureRate": True},
        {"delaySeconds": -1},
        {"delaySeconds": 1e9},
        {"failureRate": 0.5, "failurerate": 1},
    ],
)
def test_a_malformed_file_is_ignored_and_the_last_good_fault_stays(
    tmp_path: Path, content: object
) -> None:
    path = tmp_path / "fault.json"
    write(path, {"failureRate": 0.3})
    source = FaultSource(ENV, str(path))
    assert source.current().failure_rate == 0.3
    write(path, content)
    assert source.current().failure_rate == 0.3


def test_parse_fault_names_the_problem() -> None:
    with pytest.raises(FaultFileError, match="failureRate"):
        parse_fault('{"failureRate": 2}', ENV)
    with pytest.raises(FaultFileError, match="unknown keys"):
        parse_fault('{"rate": 1}', ENV)
    assert parse_fault("", Fault(0.1, 0.2)) == Fault(0.1, 0.2)  # an empty key: defaults


def test_the_failure_choice_is_stable_per_document_and_follows_the_rate() -> None:
    ids = [f"doc-{i}" for i in range(2000)]
    half = Fault(failure_rate=0.5)
    chosen = [i for i in ids if half.fails(i)]
    assert chosen == [i for i in ids if half.fails(i)]  # same answer every time
    assert 0.4 < len(chosen) / len(ids) < 0.6
    assert all(Fault(failure_rate=1.0).fails(i) for i in ids)
    assert not any(Fault(failure_rate=0.0).fails(i) for i in ids)


class _Pipeline:
    """Just what IngestionActivities reads at construction and in _inject_fault."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings


def _write_request(document_id: str) -> WriteGraphInput:
    return WriteGraphInput(document_id, "demo", "text/plain", "h", [], Blob(inline="[]"))


def test_the_write_step_fails_with_injected_fault_error_once_the_file_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fault.json"
    settings = WorkerSettings(fault_file=str(path))
    activities = IngestionActivities(_Pipeline(settings))  # type: ignore[arg-type]
    activities._inject_fault(_write_request("doc-1"))  # no file: no fault
    write(path, {"failureRate": 1.0})
    with pytest.raises(InjectedFaultError, match="demo/doc-1"):
        activities._inject_fault(_write_request("doc-1"))
    write(path, {"failureRate": 0.0})
    activities._inject_fault(_write_request("doc-1"))


def test_the_environment_settings_still_work_without_a_file() -> None:
    settings = WorkerSettings(fault_failure_rate=1.0)
    activities = IngestionActivities(_Pipeline(settings))  # type: ignore[arg-type]
    with pytest.raises(InjectedFaultError):
        activities._inject_fault(_write_request("any"))

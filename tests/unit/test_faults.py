"""The live fault source: environment defaults, a JSON file that overrides them and is
re-read when it changes (as a mounted ConfigMap does), and bad files ignored; and the
worker interceptor that applies it to the graph write."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from ingestion_worker.faults import (
    Fault,
    FaultFileError,
    FaultInterceptor,
    FaultSource,
    fault_source,
    parse_fault,
)
from ingestion_worker.models import DocumentState, IngestDocumentInput
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.steps import step_named
from temporalio.exceptions import ApplicationError

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


def _state(document_id: str) -> DocumentState:
    return DocumentState(IngestDocumentInput(document_id, "demo"), artifact_prefix="p")


def _inject(interceptor: FaultInterceptor, document_id: str) -> None:
    """What the interceptor does before a write_graph activity runs (outside an activity)."""
    asyncio.run(interceptor.inject(_state(document_id)))


def _interceptor(settings: WorkerSettings) -> FaultInterceptor:
    faults = fault_source(settings)
    assert faults is not None, "a fault setting is set: the worker registers the interceptor"
    return FaultInterceptor(faults)


def test_the_write_step_fails_with_injected_fault_error_once_the_file_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fault.json"
    interceptor = _interceptor(WorkerSettings(fault_file=str(path)))
    _inject(interceptor, "doc-1")  # no file: no fault
    write(path, {"failureRate": 1.0})
    with pytest.raises(ApplicationError, match="demo/doc-1") as raised:
        _inject(interceptor, "doc-1")
    assert raised.value.type == "InjectedFaultError" and raised.value.non_retryable
    write(path, {"failureRate": 0.0})
    _inject(interceptor, "doc-1")


def test_the_environment_settings_still_work_without_a_file() -> None:
    interceptor = _interceptor(WorkerSettings(fault_failure_rate=1.0))
    with pytest.raises(ApplicationError) as raised:
        _inject(interceptor, "any")
    assert raised.value.type == "InjectedFaultError"


def test_without_a_fault_setting_no_interceptor_is_registered() -> None:
    assert fault_source(WorkerSettings()) is None
    assert fault_source(WorkerSettings(fault_delay_seconds=0.5)) is not None


def test_the_interceptor_applies_to_the_graph_write_activity_only() -> None:
    assert FaultInterceptor(FaultSource(ENV)).activity_type == step_named("write_graph").activity

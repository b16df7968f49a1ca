"""The operator killed mid-step: its successor keeps the step's start time and does not
advance twice. The test runs its own operator process, so it can kill it. (A Prometheus
outage mid-rollout is a fault test: tests/faults/test_operator_faults.py.)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Traffic, own_targets
from conftest import body as rollout_body
from operator_harness import Cluster, OperatorProcess, poll, running_operator


@pytest.fixture
def operator_process(cluster: Cluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    with running_operator(cluster, tmp_path / "operator.log") as process:
        yield process


def test_operator_killed_mid_step_continues_where_it_was(
    cluster: Cluster, operator_process: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout in the middle of a 10-second first step
    traffic.fail(False)
    name = f"restart-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, stepOverrides=[{"step": 10, "duration": "10s"}])
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    before = poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 10, "10%")
    # when the operator is killed outright and a new one starts a moment later
    operator_process.stop(kill=True)
    time.sleep(2)
    operator_process.start()
    # then the new process keeps the step's start time and counters
    poll(
        lambda: operator_process.get(operator_process.liveness_url),
        lambda r: "lastReconcileAt" in r[1] and "null" not in r[1],
        "the new process reconciling",
    )
    during = cluster.status(name)
    if during["currentPercentage"] == 10:
        assert during["stepStartedAt"] == before["stepStartedAt"]
    # and the rollout advances once per step, never before the 10 s were up
    done = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "done")
    moves = [(h["fromPercentage"], h["toPercentage"]) for h in done["history"]]
    assert moves == [(0, 10), (10, 50), (50, 100), (100, 100)]
    started = datetime.fromisoformat(before["stepStartedAt"])
    advanced = datetime.fromisoformat(done["history"][1]["at"])
    assert advanced - started >= timedelta(seconds=10)

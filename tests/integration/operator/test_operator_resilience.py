"""The operator under failure: Prometheus dies mid-rollout (the rollout pauses and never
promotes on missing data, then resumes when Prometheus is back), and the operator
itself is killed mid-step (its successor keeps the step's start time and does not
advance twice). Each test runs its own operator process, so it can kill it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import TIMEOUT, Cluster, OperatorProcess, Traffic, own_targets, poll, rollout_body
from ingestion_sandbox.servers.services import PrometheusServer


@pytest.fixture
def operator_process(
    cluster: Cluster, kubeconfig: Path, tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, cluster.namespace, tmp_path / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(process.log.read_text()[-5000:])


def private_prometheus(traffic: Traffic, port: int | None = None) -> PrometheusServer:
    """A Prometheus of this test's own (the session's must stay up for other tests)."""
    server = PrometheusServer(port=port, scrape_interval="500ms")
    server.targets = {traffic.job: [traffic.target]}
    server.start()
    return server


def test_prometheus_outage_pauses_then_resumes(
    cluster: Cluster, operator_process: OperatorProcess, traffic: Traffic
) -> None:
    # given a rollout at 10% analysed by a Prometheus of its own
    traffic.fail(False)
    prometheus = private_prometheus(traffic)
    name = f"outage-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, name, stepDuration="3s")
    body = rollout_body(name, traffic, prometheus.url, **spec)
    body["spec"]["analysis"]["consecutiveErrorLimit"] = 1
    try:
        prometheus.wait_for_series(f'up{{job="{traffic.job}"}} == 1', timeout=TIMEOUT)
        cluster.create(body)
        poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 10, "10%")
    finally:
        prometheus.stop()  # when Prometheus goes away mid-step
    # then analysis errors pause the rollout where it is
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Paused", "Paused")
    assert status["lastAnalysis"]["verdict"] == "Error"
    assert "AnalysisErrorPaused" in cluster.reasons(name)
    time.sleep(5)  # well past the 3 s step: still no promotion on missing data
    assert cluster.status(name)["currentPercentage"] == 10
    assert cluster.percentage(f"{name}-routing") == "10"
    # when Prometheus comes back on the same address
    revived = private_prometheus(traffic, port=prometheus.port)
    try:
        # then the rollout resumes and finishes
        poll(lambda: cluster.status(name), lambda s: s.get("phase") != "Paused", "resumed")
        assert "Resumed" in poll(lambda: cluster.reasons(name), lambda r: "Resumed" in r, "event")
        poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")
    finally:
        revived.stop()


def test_operator_killed_mid_step_continues_where_it_was(
    cluster: Cluster, operator_process: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout in the middle of a 10-second first step
    traffic.fail(False)
    name = f"restart-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, name, stepOverrides=[{"step": 10, "duration": "10s"}])
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

"""Replay equals live: the real operator process carries out two rollouts (one per judge)
against contract traffic on the real control plane (tests/operator_harness.py, as
tests/integration/operator/ does), a fault is injected at 50% and both roll back; then
`kubectl ingestionrollout replay NAME` replays the same range from the same Prometheus,
and its moves are the operator's, step for step.

What "the same" can mean: the operator decides at its timer's ticks (every second here,
later under load), the replay at the grid's instants (every second from the operator's
first move), so the same move may land a tick or two apart; the moves themselves (which
Event, from which percentage to which, and the metric a rollback names) must be equal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ingestion_contract.crd import GROUP, KIND, PLURAL, VERSION
from ingestion_sandbox.servers.contract_metrics import ContractTraffic
from ingestion_sandbox.servers.control_plane import ControlPlane
from operator_harness import (
    Cluster,
    install_crd,
    operator_cluster,
    poll,
    rollout_body,
    running_operator,
)
from whatif_history import BIN

WINDOW = "10s"
#: How far a replayed move may land from the live one: a tick early (the grid starts on
#: the operator's first move, rounded down to the second), a few late (the live timer).
EARLY, LATE = 3.0, 6.0


def seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rollout(name: str, cluster: Cluster, job: str, url: str, judge: str) -> dict[str, Any]:
    """A fast rollout (1 s analyses, 3 s steps, held at 50%) with one worker replica, so no
    raise waits for Pods (the replay assumes workers are there)."""
    deployment, configmap = cluster.seed_targets()
    poll(lambda: cluster.available(deployment), lambda n: n >= 1, f"{deployment} available")
    analysis: dict[str, Any] = {"judge": judge}
    if judge == "sequential":
        analysis["thresholds"] = {"latencyQuantile": 0.9}
    return rollout_body(
        name,
        job,
        url,
        window=WINDOW,
        stepDuration="3s",
        stepOverrides=[{"step": 50, "duration": "10m"}],
        routing={"configMapName": configmap},
        workers=[{"deploymentName": deployment, "minReplicas": 1, "maxReplicas": 1}],
        analysis=analysis,
    )


def replay(kubectl: str, cluster: Cluster, name: str, start: float, end: float) -> dict[str, Any]:
    env = {**os.environ, "PATH": os.pathsep.join([BIN, os.environ.get("PATH", "")])}
    done = subprocess.run(
        [
            kubectl, "ingestionrollout", "--kubeconfig", str(cluster.plane.kubeconfig),
            "-n", cluster.namespace, "replay", name, "--from", str(int(start)),
            "--to", str(int(end)), "--step", "1s", "-o", "json",
        ],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


@pytest.mark.timeout(240)
def test_the_replay_makes_the_moves_the_live_operator_made(
    control_plane: ControlPlane, prometheus: Any, kubectl: str, tmp_path: Path
) -> None:
    # given contract traffic scraped every 500 ms, and the operator on the chart's RBAC
    install_crd(control_plane)
    traffic = ContractTraffic(job=f"whatif-{uuid.uuid4().hex[:8]}", per_second=20).start()
    try:
        prometheus.set_targets({traffic.job: [traffic.target]}, scrape_interval="500ms")
        selector = f'ingestion_documents_total{{job="{traffic.job}",path="temporal"}}'
        prometheus.wait_for_series(f"increase({selector}[{WINDOW}]) > 0", timeout=60)
        with (
            operator_cluster(control_plane, prefix="whatif") as cluster,
            running_operator(cluster, tmp_path / "operator.log"),
        ):
            settle(cluster, traffic, prometheus.url)
            live = carry_out(cluster, traffic, prometheus.url)
            time.sleep(2)  # the last scrapes are in Prometheus before the range ends
            end = time.time()
            for name, history in live.items():
                # when the same range is replayed from the rollout the cluster stores
                start = seconds(history[0]["at"])
                shown = replay(kubectl, cluster, name, start, end)
                # then its moves are the operator's, each a tick or a few from the live one
                assert_same_moves(history, shown["timeline"], name)
    finally:
        traffic.stop()


def settle(cluster: Cluster, traffic: ContractTraffic, url: str) -> None:
    """The operator past its first reconcile before the rollouts under test exist: that
    one can be held up for ~10 s (seen with the API server re-initializing the CRD's
    storage after the chart's install, answering 429 meanwhile), which delays the live
    moves in a way a replay that assumes a tick every second cannot know. So a warm-up
    rollout is carried to its first step, then deleted."""
    name = f"warmup-{uuid.uuid4().hex[:5]}"
    cluster.create(rollout(name, cluster, traffic.job, url, "threshold"))
    poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 10, "warm-up")
    cluster.objects.delete_namespaced_custom_object(GROUP, VERSION, cluster.namespace, PLURAL, name)


def carry_out(cluster: Cluster, traffic: ContractTraffic, url: str) -> dict[str, list[Any]]:
    """Both rollouts to 50%, a fault, both rolled back: each one's status.history."""
    names = {
        judge: f"live-{judge[:3]}-{uuid.uuid4().hex[:5]}" for judge in ("threshold", "sequential")
    }
    for judge, name in names.items():
        body = rollout(name, cluster, traffic.job, url, judge)
        assert body["kind"] == KIND
        cluster.create(body)
    for name in names.values():
        poll(lambda n=name: cluster.status(n), lambda s: s.get("currentPercentage") == 50, "50%")
    time.sleep(4)  # healthy at 50% for a while
    traffic.fail()
    for name in names.values():
        poll(
            lambda n=name: cluster.status(n),
            lambda s: s.get("phase") == "RolledBack",
            "rolled back",
        )
    return {name: cluster.status(name)["history"] for name in names.values()}


def assert_same_moves(live: list[Any], replayed: list[Any], name: str) -> None:
    def moves(entries: list[Any]) -> list[tuple[str, int, int]]:
        return [(e["reason"], e["fromPercentage"], e["toPercentage"]) for e in entries]

    for side, entries in (("live", live), ("replayed", replayed)):
        for e in entries:
            print(f"{name} {side:<8} {e['at']} {e['reason']}: {e['message']}")
    assert moves(replayed) == moves(live), (name, live, replayed)
    assert moves(live) == [("Started", 0, 10), ("StepAdvanced", 10, 50), ("RolledBack", 50, 0)]
    for was, replayed_move in zip(live, replayed, strict=True):
        lag = seconds(was["at"]) - seconds(replayed_move["at"])
        print(f"{name} {was['reason']}: live {lag:+.2f} s from the replay")
        assert -EARLY <= lag <= LATE, (name, was, replayed_move)
    # the rollback names the same metric (its value is read at another instant)
    assert metric(replayed[-1]["message"]) == metric(live[-1]["message"]), (live, replayed)


def metric(message: str) -> str:
    """'errorRate' of 'errorRate 0.13 > 0.05; ...', 'error rate' of 'error rate 0.2 [...'."""
    found = re.match(r"[A-Za-z ]+", message)
    return found.group().strip() if found else message

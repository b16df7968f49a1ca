"""The sandbox's kubelet: worker processes follow the Deployment, the fault ConfigMap
becomes the workers' file, crashed workers come back, and scaled-down ones drain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ingestion_sandbox.demo import kubelet as kubelet_module
from ingestion_sandbox.demo.kubelet import Kubelet


class FakeCluster:
    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.fault: str | None = json.dumps({"failureRate": 0})
        self.reported: list[tuple[int, int]] = []

    def wanted_replicas(self) -> int:
        return self.replicas

    def fault_text(self) -> str | None:
        return self.fault

    def set_deployment_status(self, replicas: int, ready: int) -> None:
        self.reported.append((replicas, ready))


class FakeChild:
    def __init__(self, slot: int, port: int, generation: int) -> None:
        self.slot, self.port, self.generation = slot, port, generation
        self.alive, self.stopping, self.exited = True, False, False
        self.pid, self.returncode = 1000 + slot, None
        self.log_path = Path(f"worker-{slot}.log")

    def request_stop(self) -> None:
        self.stopping = True

    def reap(self, kill_after: float) -> bool:
        return self.exited or not self.alive

    def stop(self, grace: float) -> None:
        self.alive = False

    def tail(self, lines: int = 30) -> str:
        return "boom"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Kubelet, FakeCluster, list]:
    monkeypatch.setattr(kubelet_module, "port_open", lambda port: True)
    cluster = FakeCluster(replicas=2)
    started: list[FakeChild] = []

    def make(slot: int, port: int, generation: int) -> Any:
        started.append(FakeChild(slot, port, generation))
        return started[-1]

    kubelet = Kubelet(cluster, [9001, 9002, 9003], make, tmp_path / "fault.json", lambda _: None)  # type: ignore[arg-type]
    return kubelet, cluster, started


def test_workers_follow_the_deployment_capped(setup: tuple[Kubelet, FakeCluster, list]) -> None:
    kubelet, cluster, started = setup
    kubelet.tick()
    assert (kubelet.running, kubelet.ready) == (2, 2)
    assert [c.port for c in started] == [9001, 9002]
    assert cluster.reported[-1] == (2, 2)
    cluster.replicas = 10  # more than a laptop should run
    kubelet.tick()
    assert kubelet.running == 3 and kubelet.wanted == 10


def test_scaling_down_drains_the_newest_worker_before_its_slot_is_reused(
    setup: tuple[Kubelet, FakeCluster, list],
) -> None:
    kubelet, cluster, started = setup
    cluster.replicas = 3
    kubelet.tick()
    cluster.replicas = 2
    kubelet.tick()
    assert started[2].stopping and kubelet.running == 2
    cluster.replicas = 3
    kubelet.tick()  # slot 2 still drains: its port is taken
    assert kubelet.running == 2 and len(started) == 3
    started[2].exited = True
    kubelet.tick()
    assert kubelet.running == 3 and started[3].slot == 2 and started[3].generation == 2


def test_a_crashed_worker_is_restarted(setup: tuple[Kubelet, FakeCluster, list]) -> None:
    kubelet, _, started = setup
    kubelet.tick()
    started[0].alive, started[0].returncode = False, -11
    kubelet.tick()
    assert kubelet.restarts == 1 and kubelet.running == 2
    assert started[-1].slot == 0 and started[-1].generation == 2


def test_the_fault_configmap_is_mounted_as_a_file_on_change(
    setup: tuple[Kubelet, FakeCluster, list], tmp_path: Path
) -> None:
    kubelet, cluster, _ = setup
    kubelet.tick()
    fault_file = tmp_path / "fault.json"
    assert json.loads(fault_file.read_text()) == {"failureRate": 0}
    inode = fault_file.stat().st_ino
    assert not kubelet.mount_fault()  # unchanged: not rewritten
    cluster.fault = json.dumps({"failureRate": 0.5})
    kubelet.tick()
    assert json.loads(fault_file.read_text()) == {"failureRate": 0.5}
    assert fault_file.stat().st_ino != inode  # replaced atomically, like a ConfigMap volume


def test_stop_all_stops_running_and_draining_workers(
    setup: tuple[Kubelet, FakeCluster, list],
) -> None:
    kubelet, cluster, started = setup
    cluster.replicas = 3
    kubelet.tick()
    cluster.replicas = 2
    kubelet.tick()
    kubelet.stop_all(grace=1.0)
    assert not any(c.alive for c in started)
    assert kubelet.running == 0 and kubelet.stopping == []

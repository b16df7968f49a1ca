"""A tiny kubelet for the sandbox: the worker Deployment's Pods become real worker
processes, and the fault ConfigMap becomes the file the workers read.

On the local control plane, the controllers and the scheduler turn the operator's scaling
into Pods and kwok runs them on its fake Node, but kwok runs no container. So on every
tick the number of running `ingestion_worker` processes follows the number of the
Deployment's Pods Running there (Cluster.wanted_replicas; capped for a laptop). On the
emulator, which runs no controllers, it follows spec.replicas and reports the Deployment's
status itself. Scaled-down workers get SIGTERM and finish their in-flight activities, a
crashed worker is restarted. Like a real kubelet with a ConfigMap volume, it also writes
the fault ConfigMap's key to the workers' FAULT_FILE whenever it changes (atomically, by
rename), so `kubectl patch configmap ingestion-faults ...` switches the fault on every
worker.

Each worker has a slot (0..cap-1) that fixes its metrics port, so Prometheus scrapes a
fixed list of targets and a restarted worker reappears under the same address.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestion_sandbox.demo.children import ChildProcess
from ingestion_sandbox.demo.cluster import Cluster
from ingestion_sandbox.servers.common import port_open

KILL_AFTER_SECONDS = 20.0  # past the workers' GRACEFUL_SHUTDOWN_SECONDS


@dataclass
class Slot:
    index: int
    port: int
    child: ChildProcess | None = None
    ready: bool = False
    started: int = 0  # processes started in this slot


class Kubelet:
    """Call `tick()` often (from the main thread: children die with the thread that
    started them)."""

    def __init__(
        self,
        cluster: Cluster,
        ports: list[int],
        make_worker: Callable[[int, int, int], ChildProcess],
        fault_file: Path,
        say: Callable[[str], None],
    ) -> None:
        self.cluster = cluster
        self.slots = [Slot(i, port) for i, port in enumerate(ports)]
        self.make_worker = make_worker  # (slot index, metrics port, generation) -> started child
        self.fault_file = fault_file
        self.say = say
        self.stopping: list[tuple[int, ChildProcess]] = []  # (slot index, exiting child)
        self.restarts = 0
        self.wanted = 0
        self._fault_text: str | None = None
        self._reported: tuple[int, int] | None = None

    @property
    def cap(self) -> int:
        return len(self.slots)

    @property
    def running(self) -> int:
        return sum(1 for s in self.slots if s.child is not None)

    @property
    def ready(self) -> int:
        return sum(1 for s in self.slots if s.child is not None and s.ready)

    def tick(self) -> None:
        self.mount_fault()
        self._reap()
        self.wanted = self.cluster.wanted_replicas()
        target = min(self.cap, self.wanted)
        self._restart_crashed()
        while self.running < target and self._start_one():
            pass
        while self.running > target:
            self._stop_one()
        self._check_ready()
        self._report()

    def mount_fault(self) -> bool:
        """Write the fault ConfigMap's key to the workers' file if it changed."""
        text = self.cluster.fault_text()
        if text is None or text == self._fault_text:
            return False
        staging = self.fault_file.with_name(self.fault_file.name + ".tmp")
        staging.write_text(text)
        os.replace(staging, self.fault_file)
        self._fault_text = text
        return True

    def _start_one(self) -> bool:
        busy = {index for index, _ in self.stopping}  # the old process still holds the port
        for slot in self.slots:
            if slot.child is None and slot.index not in busy:
                slot.started += 1
                slot.child = self.make_worker(slot.index, slot.port, slot.started)
                slot.ready = False
                self.say(f"kubelet: started worker {slot.index} (pid {slot.child.pid})")
                return True
        return False  # every free slot still waits for its old process to exit

    def _stop_one(self) -> None:
        slot = max((s for s in self.slots if s.child is not None), key=lambda s: s.index)
        assert slot.child is not None
        self.say(f"kubelet: stopping worker {slot.index} (pid {slot.child.pid}): scaled down")
        slot.child.request_stop()
        self.stopping.append((slot.index, slot.child))
        slot.child, slot.ready = None, False

    def _restart_crashed(self) -> None:
        for slot in self.slots:
            child = slot.child
            if child is not None and not child.alive:
                self.restarts += 1
                self.say(
                    f"kubelet: worker {slot.index} exited with {child.returncode}; restarting "
                    f"(log {child.log_path}):\n{child.tail(15)}"
                )
                child.reap(0)
                slot.child, slot.ready = None, False

    def _reap(self) -> None:
        self.stopping = [(i, c) for i, c in self.stopping if not c.reap(KILL_AFTER_SECONDS)]

    def _check_ready(self) -> None:
        for slot in self.slots:
            if slot.child is not None and not slot.ready:
                slot.ready = port_open(slot.port)  # metrics served: the worker is up

    def _report(self) -> None:
        state = (self.running, self.ready)
        if state != self._reported:
            self.cluster.set_deployment_status(*state)
            self._reported = state

    def stop_all(self, grace: float) -> None:
        """Stop every worker (blocking): SIGTERM all first, so they drain in parallel."""
        children = [s.child for s in self.slots if s.child is not None]
        children += [child for _, child in self.stopping]
        for child in children:
            child.request_stop()
        for child in children:
            child.stop(grace)
        for slot in self.slots:
            slot.child, slot.ready = None, False
        self.stopping = []

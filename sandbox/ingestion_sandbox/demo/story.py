"""The demo's chapters, driven from the supervisor's main thread.

Traffic first (legacy only), then the rollout is applied with kubectl and walks
10% -> 50%; a fault is switched on for the Temporal path (the fault ConfigMap the
workers mount), and the operator must roll back to 0% by itself; the fault is
cleared, the rollout retried, and it must complete at 100%; finally traffic drains
and every document is accounted for. Each wait is a loop of observer ticks (kubelet,
metrics, Events, live view) with a deadline; a chapter that cannot happen stops the
story with a note, and the recorded Timeline decides the exit status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion_sandbox.demo.cluster import fault_json
from ingestion_sandbox.demo.console import Console
from ingestion_sandbox.demo.monitor import (
    Metrics,
    PanelState,
    Sample,
    judged_values,
    render_line,
    render_panel,
)
from ingestion_sandbox.demo.options import DemoOptions
from ingestion_sandbox.demo.rollout import Kubectl
from ingestion_sandbox.demo.sandbox import TASK_QUEUE, Sandbox
from ingestion_sandbox.demo.timeline import (
    COMPLETED,
    ROLLED_BACK,
    RolloutEvent,
    Timeline,
    rollbacks,
)
from ingestion_sandbox.demo.traffic import INJECTED, TrafficGenerator, tally

TICK_SECONDS = 0.25


class ChapterFailed(Exception):
    """The story cannot go on as told; the message says which chapter and why."""


class Observer:
    """What the supervisor notices on every tick, recorded in the Timeline and shown."""

    def __init__(
        self,
        sandbox: Sandbox,
        metrics: Metrics,
        generator: TrafficGenerator,
        timeline: Timeline,
        console: Console,
        t0: float,
    ) -> None:
        self.sandbox, self.metrics, self.generator = sandbox, metrics, generator
        self.timeline, self.console, self.t0 = timeline, console, t0
        self.samples: list[Sample] = []
        self.status: dict[str, Any] = {}
        self._seen: set[str] = set()
        self._next_sample = self._next_panel = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def tick(self, sample: bool = True) -> None:
        """One round of observation; `sample=False` records state but no chart point."""
        self.sandbox.tick()
        at, weight = self.now(), self.sandbox.cluster.weight()
        if weight is not None and self.timeline.record_weight(at, weight):
            self.console.say(f"routing ConfigMap: {weight}% of new documents go to Temporal")
        if sample and time.monotonic() >= self._next_sample:
            self._next_sample = time.monotonic() + 1.0
            self._sample(at, weight)
        elif not sample:
            self.status = (self.sandbox.cluster.rollout() or {}).get("status") or {}
        if time.monotonic() >= self._next_panel:
            self._next_panel = time.monotonic() + (2.0 if self.console.live else 5.0)
            self._draw()

    def _sample(self, at: float, weight: int | None) -> None:
        self.status = (self.sandbox.cluster.rollout() or {}).get("status") or {}
        for event in self.sandbox.cluster.events():
            meta = event.get("metadata") or {}
            uid = str(meta.get("uid") or meta.get("name"))
            if uid not in self._seen:
                self._seen.add(uid)
                seen = RolloutEvent(at, event.get("type", ""), event["reason"], event["message"])
                self.timeline.events.append(seen)
                self.console.say(f"Event {seen.type} {seen.reason}: {seen.message}")
        kubelet = self.sandbox.kubelet
        sample = Sample(at, weight, self.status.get("phase"), judged=judged_values(self.status))
        sample.workers_wanted, sample.workers_running = kubelet.wanted, kubelet.running
        self.samples.append(self.metrics.fill(sample))

    def _draw(self) -> None:
        t = tally(self.generator.snapshot())
        finished = t.submitted - t.unfinished
        documents = {"submitted": t.submitted, "finished": finished, "in flight": t.unfinished}
        for path in ("temporal", "legacy"):
            documents[f"{path} ok"] = t.succeeded.get(path, 0)
            documents[f"{path} failed"] = t.failed_injected.get(path, 0) + t.failed_other.get(
                path, 0
            )
        kubelet, cluster = self.sandbox.kubelet, self.sandbox.cluster
        state = PanelState(
            elapsed=self.now(),
            run_dir=str(self.sandbox.run_dir),
            rollout=cluster.names.rollout,
            status=self.status,
            sample=self.latest,
            documents=documents,
            events=[
                f"+{e.at:5.1f}s {e.type} {e.reason}: {e.message}" for e in self.timeline.events
            ],
            story=self.console.lines,
            fault=cluster.fault_text() or "-",
            workers=(kubelet.wanted, kubelet.running, kubelet.ready),
        )
        self.console.panel(render_panel(state), render_line(state))


class Story:
    def __init__(
        self,
        options: DemoOptions,
        observer: Observer,
        kubectl: Kubectl,
        rollout: tuple[Path, dict[str, Any]],
    ) -> None:
        self.o, self.observer, self.kubectl = options, observer, kubectl
        self.rollout_path, self.rollout = rollout
        self.t, self.say = observer.timeline, observer.console.say

    def run(self) -> None:
        """Every chapter in order; a failed one is noted and ends the story early."""
        try:
            for chapter in (self.traffic, self.walk, self.fault, self.retry):
                chapter()
        except Exception as exc:  # noted: the summary and the exit status report it
            self.t.notes.append(str(exc))
            self.say(f"STORY STOPPED: {exc}")
        self.finish()

    def wait(
        self, done: Callable[[], bool], what: str, timeout: float | None = None,
        abort: Callable[[], str | None] | None = None,
    ) -> None:  # fmt: skip
        deadline = time.monotonic() + (timeout or self.o.chapter_timeout)
        while True:
            self.observer.tick()
            if done():
                return
            reason = abort() if abort else None
            if reason:
                raise ChapterFailed(reason)
            if time.monotonic() > deadline:
                raise ChapterFailed(
                    f"gave up waiting for {what} after {timeout or self.o.chapter_timeout:.0f}s"
                )
            time.sleep(TICK_SECONDS)

    def weight_is(self, value: int) -> Callable[[], bool]:
        return lambda: bool(self.t.weights) and self.t.weights[-1][1] == value

    def early_rollback(self) -> str | None:
        early = rollbacks(self.t)
        if early or self.observer.status.get("phase") == "RolledBack":
            detail = early[0].message if early else self.observer.status.get("message")
            return f"chapter 1: rolled back before any fault was injected: {detail}"
        return None

    def traffic(self) -> None:
        generator, samples = self.observer.generator, self.observer.sandbox.samples
        kinds = ", ".join(sorted({s.kind for s in samples}))
        self.say(
            f"Traffic: {self.o.rate:g} documents/s POSTed to {generator.api_url}/v1/documents, "
            f"unique ids, over {len(samples)} sample documents ({kinds}); all legacy for now"
        )
        generator.start()
        started = self.observer.now()
        warming = generator.warm_up(TASK_QUEUE)
        self.wait(warming.done, "the warm-up documents", 90)
        warmed = warming.result()
        self.say(
            f"  meanwhile {warmed} documents went straight through the Temporal workers to warm "
            f"them up ({self.observer.now() - started:.1f}s; not routed, not counted)"
        )
        self.wait(
            lambda: bool(self.observer.latest and self.observer.latest.rate.get("legacy")),
            "the first legacy documents in Prometheus",
        )
        # The API's first documents pay its own one-time costs (parsers imported on first
        # use); let them leave the analysis window before the legacy p99 is compared with.
        settle = self.o.window_seconds + 2
        self.say(f"  {settle}s of legacy-only traffic in all, so the analysis window starts warm")
        self.wait(lambda: self.observer.now() - started >= settle, "warm legacy traffic")

    def walk(self) -> None:
        self.say(f"Chapter 1: apply the rollout ({self.rollout_path.name}, from the example)")
        self.kubectl.apply(self.rollout_path, self.rollout)
        self.say(f"  watch it yourself: kubectl --kubeconfig {self.kubectl.kubeconfig} get ir -w")
        self.wait(self.weight_is(10), "10%", abort=self.early_rollback)
        self.wait(self.weight_is(50), "50%", abort=self.early_rollback)
        reached = self.observer.now()
        self.say(f"  at 50%: {self.o.healthy_seconds:g}s of healthy traffic before the fault")
        self.wait(
            lambda: self.observer.now() - reached >= self.o.healthy_seconds,
            "healthy traffic at 50%",
            abort=lambda: self.early_rollback() or (None if self.weight_is(50)() else "left 50%"),
        )

    def fault(self) -> None:
        self.say(
            f"Chapter 2: fault. {self.o.fault_rate:.0%} of Temporal-path documents now fail their "
            "graph write (InjectedFaultError, not retried); the workers mount the ConfigMap as "
            "FAULT_FILE"
        )
        self.kubectl.set_fault(fault_json(self.o.fault_rate, self.o.fault_delay_seconds))
        self.t.fault_injected_at = self.observer.now()
        self.wait(self.weight_is(0), "the automatic rollback to 0%")
        self.say(
            f"  rolled back to 0% "
            f"{self.observer.now() - self.t.fault_injected_at:.1f}s after the fault"
        )
        self.wait(
            lambda: bool(rollbacks(self.t, after=self.t.fault_injected_at)),
            "the RolledBack Event",
            30,
        )

    def retry(self) -> None:
        self.say("Chapter 3: clear the fault, then retry")
        self.kubectl.set_fault(fault_json(0.0, 0.0))
        self.t.fault_cleared_at = self.observer.now()
        self.say(
            f"  waiting for the fault's failures to leave the {self.o.window_seconds}s analysis "
            "window (a retry judged on them would roll back again)"
            if self.o.judge != "sequential"
            else f"  waiting for the fault's last failures to finish and leave the "
            f"{self.o.window_seconds}s window (the sequential judge counts from the retried "
            "step's start: a late failure would count against it)"
        )
        self.wait(self.window_clean, "a clean analysis window", self.o.window_seconds * 4 + 30)
        self.kubectl.retry(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.t.retried_at = self.observer.now()
        retried = self.t.retried_at

        def rolled_back_again() -> str | None:
            again = rollbacks(self.t, after=retried)
            return (
                f"chapter 3: rolled back again after the retry: {again[0].message}"
                if again
                else None
            )

        # one wait per step, each with the chapter's timeout (the sequential judge's steps
        # wait for their documents, longer when the machine is busy)
        self.wait(
            lambda: any(w >= 50 for at, w in self.t.weights if at >= retried),
            "50% after the retry",
            abort=rolled_back_again,
        )
        self.wait(
            lambda: self.weight_is(100)() and self.observer.status.get("phase") == "Completed",
            "the rollout to complete at 100%",
            abort=rolled_back_again,
        )
        self.wait(lambda: any(e.reason == COMPLETED for e in self.t.events), "RolloutCompleted", 30)

    def window_clean(self) -> bool:
        """No Temporal failure left in the analysis window. Prometheus alone cannot tell
        yet while the failure counter is brand new (increase() skips a series' first
        sample), so a whole window must also have passed since the fault was cleared."""
        cleared = self.t.fault_cleared_at or 0.0
        if self.observer.now() - cleared < self.o.window_seconds + 3:
            return False
        query = (
            'sum(increase(ingestion_documents_total{path="temporal",outcome="failure"}'
            f"[{self.o.window_seconds}s]))"
        )
        try:
            result = self.observer.metrics.prometheus.query(query)
        except (OSError, RuntimeError, ValueError):
            return False
        return not result or float(result[0]["value"][1]) == 0.0

    def finish(self) -> None:
        """Stop sending, let every document finish, record the final state."""
        generator = self.observer.generator
        self.say(
            f"Draining: no new documents; waiting up to {self.o.drain_timeout:g}s for the rest"
        )
        try:
            generator.drain(self.o.drain_timeout)
        except Exception as exc:
            self.t.notes.append(f"draining the traffic failed: {exc}")
        try:
            self.observer.tick(sample=False)  # no chart point: traffic has stopped
        except Exception as exc:  # e.g. a server died: keep what was seen so far
            self.t.notes.append(f"after draining: {exc}")
        self.t.final_phase = self.observer.status.get("phase")
        records = generator.snapshot()
        self.t.documents = tally(records)
        failures = [
            r.finished_at
            for r in records
            if r.error_type == INJECTED and r.path == "temporal" and r.finished_at is not None
        ]
        if failures:
            self.t.first_injected_failure_at = min(failures) - self.observer.t0
        self.say(
            f"Drained: {self.t.documents.submitted} documents, "
            f"{self.t.documents.unfinished} unfinished"
        )


__all__ = ["ROLLED_BACK", "ChapterFailed", "Observer", "Story"]

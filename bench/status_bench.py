"""Status reads against the real servers (issue 17): how many per second one API process
answers, how fast `?wait=` hears a completion, and whether polling slows ingestion.

Starts the Temporal dev server, FalkorDB (Bolt), moto S3 (own process), one worker process
and one `ingestion-api` process (`python -m ingestion_api.main`, journal on disk) routing
50%: each document's path is picked by its id's hash (bench/_status_system.py). Every
client is a process of its own (bench/_status_clients.py), so the API process is what is
measured.

1. Finished document, reads/s with 1 and 16 clients: legacy (the journal), Temporal accepted
   by this API (the journal), Temporal started elsewhere (Temporal's record: describe and
   close event, reused for API_STATUS_RECORD_REUSE_SECONDS); and, for scale, what reading it
   cost before: a `get_status` query per read (bench process, 1 and 16 concurrent).
2. In-flight document, reads/s with 1 and 16 clients, per path: documents held in their
   graph write by pausing the graph database (SIGSTOP); the workflow queries sent are counted
   (ingestion_temporal_status_calls_total).
3. `?wait=` latency: from completion (legacy: the journal's finished_at; Temporal: the
   workflow's close time) to the waiting client having the answer.
4. Temporal-path ingestion, 16 documents in flight (POST, then one ?wait= each), alone and
   with 100 clients polling in-flight documents every 250 ms (plain GETs, as a dashboard
   would), alternated over `--rounds`: p50/p99 latency, documents/s, the task-queue backlog
   (DescribeTaskQueue every 0.2 s), the workflow queries the polling caused, the CPU each
   process spent per document, and the polled/alone ratios of each round (the machine's
   load drifts, so rounds are compared pairwise).

Never a test: it prints numbers.

    .venv/bin/python bench/status_bench.py [--seconds 5] [--documents 40] [--rounds 4]
        [--waits 20] [--only finished,in_flight,wait,ingestion] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _stats import CpuMeter, percentile, spread
from _status_system import FINAL, SOURCE, System, client_process, running
from ingestion_worker.backlog import task_queue_backlog
from ingestion_worker.client import ingestion_status, start_ingestion
from ingestion_worker.models import IngestDocumentInput, workflow_id_for
from temporalio.service import RPCError

IN_FLIGHT = 16
POLLERS, POLL_INTERVAL = 100, 0.25
PARTS = ("finished", "in_flight", "wait", "ingestion")


async def reads_per_second(
    system: System, document_id: str, clients: int, seconds: float
) -> dict[str, float]:
    """Reads/s of one document by `clients` client connections; API CPU per read; queries."""
    host, port = system.url.removeprefix("http://").split(":")
    path = system.status_url(document_id).removeprefix(system.url)
    meter = CpuMeter({"api": system.api_pid})
    queries = await system.calls("query")
    meter.start()
    process = client_process("hammer", host, port, path, str(clients), str(seconds))
    out, _ = await asyncio.to_thread(process.communicate)
    cpu = meter.stop()["api"]
    counts = json.loads(out)
    sent = await system.calls("query") - queries
    reads = counts["reads"]
    return {
        "reads_per_s": reads / seconds,
        "errors": counts["errors"],
        "api_cpu_us_per_read": cpu / max(reads, 1) * 1e6,
        "queries": sent,
    }


async def direct_queries(
    system: System, document_id: str, clients: int, seconds: float
) -> dict[str, float]:
    """What a read cost before: one get_status query each (answers/s; timed-out queries)."""
    deadline, counts = time.monotonic() + seconds, {"reads": 0, "errors": 0}

    async def loop() -> None:
        while time.monotonic() < deadline:
            try:
                await ingestion_status(system.temporal, SOURCE, document_id)
                counts["reads"] += 1
            except RPCError:  # the server gave up waiting for a worker to answer
                counts["errors"] += 1

    await asyncio.gather(*(loop() for _ in range(clients)))
    return {"reads_per_s": counts["reads"] / seconds, "errors": counts["errors"]}


async def finished_reads(system: System, seconds: float) -> dict[str, Any]:
    legacy, temporal = system.ids("legacy", 1, "fin-l")[0], system.ids("temporal", 1, "fin-t")[0]
    elsewhere = system.ids("temporal", 1, "fin-x")[0]
    for document_id in (legacy, temporal):
        await system.ingest(document_id)
    request = IngestDocumentInput(elsewhere, SOURCE)
    await (await start_ingestion(system.temporal, request, system.settings.task_queue)).result()
    results: dict[str, Any] = {}
    for name, document_id in (
        ("legacy", legacy),
        ("temporal, accepted here", temporal),
        ("temporal, accepted elsewhere", elsewhere),
    ):
        for clients in (1, 16):
            results[f"{name}, {clients}"] = await reads_per_second(
                system, document_id, clients, seconds
            )
    for clients in (1, 16):
        before = await direct_queries(system, elsewhere, clients, seconds)
        results[f"before: a query per read, {clients}"] = before
    return results


@contextlib.asynccontextmanager
async def graph_paused(system: System) -> AsyncIterator[None]:
    """The graph database stopped (SIGSTOP): graph writes hang until it resumes."""
    os.kill(system.graph_pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(system.graph_pid, signal.SIGCONT)


async def in_flight_reads(system: System, seconds: float) -> dict[str, Any]:
    held = {"legacy": system.ids("legacy", 1, "fly-l")[0]}
    held["temporal"] = system.ids("temporal", 1, "fly-t")[0]
    results: dict[str, Any] = {}
    async with graph_paused(system):
        for document_id in held.values():
            await system.post(document_id)
        for document_id in held.values():
            deadline = time.monotonic() + 60
            while (await system.status(document_id))["step"] != "write_graph":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{document_id} never reached its graph write")
                await asyncio.sleep(0.1)
        for path, document_id in held.items():
            for clients in (1, 16):
                results[f"{path}, {clients}"] = await reads_per_second(
                    system, document_id, clients, seconds
                )
    for document_id in held.values():
        await system.status(document_id, "60s")
    return results


async def completion_time(system: System, path: str, document_id: str) -> float:
    """When the document finished: the journal's finished_at, or the workflow's close time."""
    if path == "legacy":
        with sqlite3.connect(system.journal) as db:
            (finished,) = db.execute(
                "SELECT finished_at FROM documents WHERE source = ? AND document_id = ?",
                (SOURCE, document_id),
            ).fetchone()
        return float(finished)
    handle = system.temporal.get_workflow_handle(workflow_id_for(SOURCE, document_id))
    closed = (await handle.describe()).close_time
    assert closed is not None
    return closed.timestamp()


async def wait_latency(system: System, count: int) -> dict[str, Any]:
    """Milliseconds from completion to a waiting client having the answer, per path."""
    results: dict[str, Any] = {}
    for path in ("legacy", "temporal"):
        late = []
        for document_id in system.ids(path, count, f"wait-{path[0]}"):
            await system.post(document_id)
            view = await system.status(document_id, "30s")
            answered = time.time()
            if view["status"] not in FINAL:
                raise RuntimeError(f"{document_id} did not finish within the wait: {view}")
            late.append((answered - await completion_time(system, path, document_id)) * 1e3)
        results[path] = {q: percentile(late, v) for q, v in (("p50_ms", 0.5), ("p99_ms", 0.99))}
        results[path]["max_ms"] = max(late)
    return results


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    backlog: list[int] = field(default_factory=list)
    queries: float = 0.0
    polls: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds

    def add(self, other: Phase) -> None:
        self.latencies += other.latencies
        self.backlog += other.backlog
        self.seconds += other.seconds
        self.queries += other.queries
        self.polls += other.polls
        for name, seconds in other.cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def summary(self) -> dict[str, float]:
        done = len(self.latencies)
        return {
            "p50_ms": percentile(self.latencies, 0.5) * 1e3,
            "p99_ms": percentile(self.latencies, 0.99) * 1e3,
            "docs_per_s": done / self.seconds,
            "backlog_max": max(self.backlog, default=0),
            "backlog_mean": sum(self.backlog) / max(len(self.backlog), 1),
            "queries_per_s": self.queries / self.seconds,
            "polls_per_s": self.polls / self.seconds,
            **{f"{name}_cpu_ms_per_doc": s / done * 1e3 for name, s in self.cpu.items()},
        }


async def sample_backlog(system: System, into: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        into.append(await task_queue_backlog(system.temporal, system.settings.task_queue))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def closed_loop(
    system: System, ids: list[str], tell: Callable[[str], None], pids: dict[str, int]
) -> Phase:
    """IN_FLIGHT documents at a time, each POSTed then waited for; `tell` hears +id/-id."""
    phase, queue = Phase(), list(reversed(ids))

    async def lane() -> None:
        while queue:
            document_id = queue.pop()
            phase.latencies.append(await system.ingest(document_id, lambda d: tell(f"+{d}")))
            tell(f"-{document_id}")

    stop, meter = asyncio.Event(), CpuMeter(pids)
    sampler = asyncio.create_task(sample_backlog(system, phase.backlog, stop))
    queries, started = await system.calls("query"), time.perf_counter()
    meter.start()
    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    phase.cpu = meter.stop()
    phase.seconds = time.perf_counter() - started
    phase.queries = await system.calls("query") - queries
    stop.set()
    await sampler
    return phase


async def with_clients(system: System, ids: list[str], mode: str) -> Phase:
    """The closed loop while POLLERS clients poll ("poll") or wait on ("wait") its
    in-flight documents."""
    host, port = system.url.removeprefix("http://").split(":")
    interval = str(POLL_INTERVAL if mode == "poll" else 0)
    clients = client_process(mode, host, port, SOURCE, str(POLLERS), interval)
    assert clients.stdin is not None

    def tell(line: str, stdin: Any = clients.stdin) -> None:
        stdin.write(line + "\n")
        stdin.flush()

    await asyncio.sleep(1.0)  # every client connected
    phase = await closed_loop(system, ids, tell, {**system.pids, "clients": clients.pid})
    out, _ = await asyncio.to_thread(clients.communicate)
    phase.polls = json.loads(out)["reads"]
    return phase


#: Phase name -> what its extra clients do (None: no extra clients).
MODES = {
    "alone": None,
    f"{POLLERS} clients polling every {POLL_INTERVAL:g} s": "poll",
    f"{POLLERS} clients waiting (?wait=30s)": "wait",
}


async def ingestion_with_pollers(system: System, documents: int, rounds: int) -> dict[str, Any]:
    """Temporal-path ingestion alone, with POLLERS polling clients and with POLLERS waiting
    clients; each round runs the three in a rotated order, so a drifting machine load
    spreads evenly, and is compared within itself."""
    totals = {name: Phase() for name in MODES}
    ratios: dict[str, list[float]] = {}
    warm = system.ids("temporal", IN_FLIGHT, "warm")
    await closed_loop(system, warm, lambda _: None, system.pids)
    for round_ in range(rounds):
        order = list(MODES)[round_ % len(MODES) :] + list(MODES)[: round_ % len(MODES)]
        phases: dict[str, Phase] = {}
        for name in order:
            ids = system.ids("temporal", documents, f"ing{round_}{list(MODES).index(name)}")
            mode = MODES[name]
            phases[name] = await (
                closed_loop(system, ids, lambda _: None, system.pids)
                if mode is None
                else with_clients(system, ids, mode)
            )
            print(f"round {round_ + 1}, {name}: {brief(phases[name])}", flush=True)
            totals[name].add(phases[name])
        alone = phases["alone"].summary()
        for name in list(MODES)[1:]:
            figures = phases[name].summary()
            for key in ("p50_ms", "p99_ms", "docs_per_s"):
                ratios.setdefault(f"{name}: {key}", []).append(figures[key] / alone[key])
    results: dict[str, Any] = {name: phase.summary() for name, phase in totals.items()}
    for name in list(MODES)[1:]:
        row = {}
        for key in ("p50_ms", "p99_ms", "docs_per_s"):
            middle, low, high = spread(ratios[f"{name}: {key}"])
            row |= {f"{key}_median": middle, f"{key}_min": low, f"{key}_max": high}
        results[f"{name} / alone, per round"] = row
    return results


def brief(phase: Phase) -> str:
    return ", ".join(f"{k} {number(v)}" for k, v in phase.summary().items() if "cpu" not in k)


async def measure(system: System, args: argparse.Namespace) -> dict[str, Any]:
    parts = args.only.split(",")
    results: dict[str, Any] = {}
    if "finished" in parts:
        results["finished"] = await finished_reads(system, args.seconds)
        show("Finished document: reads/s of one document", results["finished"])
    if "in_flight" in parts:
        results["in_flight"] = await in_flight_reads(system, args.seconds)
        show("In-flight document (held in its graph write): reads/s", results["in_flight"])
    if "wait" in parts:
        results["wait"] = await wait_latency(system, args.waits)
        title = f"?wait= answer after completion, {args.waits} documents per path, ms"
        show(title, results["wait"])
    if "ingestion" in parts:
        results["ingestion"] = await ingestion_with_pollers(system, args.documents, args.rounds)
        title = (
            f"Temporal-path ingestion, {IN_FLIGHT} in flight, {args.documents} documents x "
            f"{args.rounds} rounds per phase; pollers read an in-flight document every "
            f"{POLL_INTERVAL:g} s"
        )
        show(title, results["ingestion"])
    return results


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    async with running(tmp) as system:
        return await measure(system, args)


def number(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def show(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    for name, figures in rows.items():
        cells = ", ".join(f"{key} {number(value)}" for key, value in figures.items())
        print(f"  {name:<40} {cells}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per reads/s measurement")
    parser.add_argument("--documents", type=int, default=40, help="per ingestion phase and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--waits", type=int, default=20, help="?wait= documents per path")
    parser.add_argument("--only", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--json", type=Path, help="write the results here (bench/all.py)")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK's core can crash at interpreter exit


if __name__ == "__main__":
    main()

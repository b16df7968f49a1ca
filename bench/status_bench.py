"""Status reads against the real servers (issue 17): how many per second one API process
answers, how fast `?wait=` hears a completion, and whether polling slows ingestion.

Starts the Temporal dev server, FalkorDB (Bolt), moto S3 (own process), one worker process
and one `ingestion-api` process (`python -m ingestion_api.main`, journal on disk) routing
50%: each document's path is picked by its id's hash. Every client is a process of its own
(bench/_status_clients.py), so the API process is what is measured.

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
   with 100 clients polling in-flight documents every 250 ms, alternated over `--rounds`:
   p50/p99 latency, documents/s, the task-queue backlog (DescribeTaskQueue every 0.2 s)
   and the workflow queries the polling caused.

Never a test: it prints numbers.

    .venv/bin/python bench/status_bench.py [--seconds 5] [--documents 60] [--rounds 2]
        [--waits 20] [--only finished,in_flight,wait,ingestion] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import aiohttp
import boto3
from _stats import CpuMeter, percentile, settings_for
from ingestion_api.routing import should_use_temporal
from ingestion_sandbox.servers.services import (
    FalkorDBServer,
    S3ProcessServer,
    TemporalDevServer,
    free_port,
)
from ingestion_worker.backlog import task_queue_backlog
from ingestion_worker.client import ingestion_status, start_ingestion
from ingestion_worker.models import IngestDocumentInput, workflow_id_for
from ingestion_worker.settings import WorkerSettings
from temporalio.client import Client

HERE = Path(__file__).resolve().parent
SOURCE = "bench"
PERCENTAGE = 50
BODY = (b"Invoice INV-2024-0001 for order ORD-12345 sent to jane@example.com. " * 30)[:2000]
FINAL = ("completed", "failed")
IN_FLIGHT = 16
POLLERS, POLL_INTERVAL = 100, 0.25
PARTS = ("finished", "in_flight", "wait", "ingestion")


@dataclass
class System:
    """The running servers and processes."""

    settings: WorkerSettings
    temporal: Client
    url: str
    api_pid: int
    graph_pid: int
    #: Every server and process of the system, for CPU per document.
    pids: dict[str, int]
    journal: Path
    http: aiohttp.ClientSession
    made: dict[str, int] = field(default_factory=dict)

    def ids(self, path: str, n: int, prefix: str) -> list[str]:
        """`n` new document ids that take `path` at PERCENTAGE, uploaded to S3."""
        found: list[str] = []
        while len(found) < n:
            count = self.made[prefix] = self.made.get(prefix, 0) + 1
            document_id = f"{prefix}-{count}"
            temporal = should_use_temporal(document_id, PERCENTAGE)
            if (path == "temporal") == temporal:
                found.append(document_id)
        s3 = boto3.client("s3", endpoint_url=self.settings.s3_endpoint_url, region_name="us-east-1")
        for document_id in found:
            key = f"{self.settings.documents_prefix}/{SOURCE}/{document_id}"
            s3.put_object(
                Bucket=self.settings.documents_bucket, Key=key, Body=BODY, ContentType="text/plain"
            )
        return found

    def status_url(self, document_id: str, wait: str = "") -> str:
        return f"{self.url}/v1/documents/{SOURCE}/{document_id}" + (f"?wait={wait}" if wait else "")

    async def post(self, document_id: str) -> None:
        body = {"document_id": document_id, "source": SOURCE}
        async with self.http.post(f"{self.url}/v1/documents", json=body) as response:
            if response.status != 202:
                raise RuntimeError(f"{document_id}: {response.status} {await response.text()}")

    async def status(self, document_id: str, wait: str = "") -> dict[str, Any]:
        async with self.http.get(self.status_url(document_id, wait)) as response:
            body: dict[str, Any] = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{document_id}: {response.status} {body}")
            return body

    async def ingest(self, document_id: str) -> float:
        """Seconds from POST to the finished status (one ?wait= long-poll)."""
        started = time.perf_counter()
        await self.post(document_id)
        while (view := await self.status(document_id, "60s"))["status"] not in FINAL:
            pass
        if view["status"] != "completed":
            raise RuntimeError(f"{document_id} failed: {view}")
        return time.perf_counter() - started

    async def calls(self, call: str) -> float:
        """The API's ingestion_temporal_status_calls_total{call=...}."""
        async with self.http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        prefix = f'ingestion_temporal_status_calls_total{{call="{call}"}} '
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0


def environment(settings: WorkerSettings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            env[f.metadata["env"]] = str(value).lower() if isinstance(value, bool) else str(value)
    return env | extra


def client_process(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(HERE / "_status_clients.py"), *args]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


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


async def direct_queries(system: System, document_id: str, clients: int, seconds: float) -> float:
    """What a read cost before: one get_status query each (queries/s)."""
    deadline, count = time.monotonic() + seconds, 0

    async def loop() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            await ingestion_status(system.temporal, SOURCE, document_id)
            count += 1

    await asyncio.gather(*(loop() for _ in range(clients)))
    return count / seconds


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
        rate = await direct_queries(system, elsewhere, clients, seconds)
        results[f"before: a query per read, {clients}"] = {"reads_per_s": rate}
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
            tell(f"+{document_id}")
            phase.latencies.append(await system.ingest(document_id))
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


async def polled(system: System, ids: list[str]) -> Phase:
    """The closed loop while POLLERS clients poll its in-flight documents."""
    host, port = system.url.removeprefix("http://").split(":")
    pollers = client_process("poll", host, port, SOURCE, str(POLLERS), str(POLL_INTERVAL))
    assert pollers.stdin is not None

    def tell(line: str, stdin: Any = pollers.stdin) -> None:
        stdin.write(line + "\n")
        stdin.flush()

    await asyncio.sleep(1.0)  # every poller connected
    phase = await closed_loop(system, ids, tell, {**system.pids, "pollers": pollers.pid})
    out, _ = await asyncio.to_thread(pollers.communicate)
    phase.polls = json.loads(out)["reads"]
    return phase


async def ingestion_with_pollers(system: System, documents: int, rounds: int) -> dict[str, Any]:
    """Temporal-path ingestion alone and with POLLERS polling clients, alternated."""
    alone, with_pollers = Phase(), Phase()
    warm = system.ids("temporal", IN_FLIGHT, "warm")
    await closed_loop(system, warm, lambda _: None, system.pids)
    for round_ in range(rounds):
        ids = system.ids("temporal", documents, f"ing{round_}a")
        phase = await closed_loop(system, ids, lambda _: None, system.pids)
        print(f"round {round_ + 1}, alone: {brief(phase)}", flush=True)
        alone.add(phase)
        phase = await polled(system, system.ids("temporal", documents, f"ing{round_}p"))
        print(f"round {round_ + 1}, {POLLERS} pollers: {brief(phase)}", flush=True)
        with_pollers.add(phase)
    return {"alone": alone.summary(), f"with {POLLERS} polling clients": with_pollers.summary()}


def brief(phase: Phase) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in phase.summary().items() if "cpu" not in k)


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with contextlib.ExitStack() as stack:
        temporal = stack.enter_context(TemporalDevServer())
        s3 = stack.enter_context(S3ProcessServer())
        graph = stack.enter_context(FalkorDBServer())
        name = uuid.uuid4().hex[:6]
        settings = settings_for(
            temporal,
            s3,
            graph,
            documents_bucket=f"status-{name}",
            artifact_bucket=f"status-{name}-artifacts",
        )
        client = boto3.client("s3", **s3.client_kwargs())
        for bucket in (settings.documents_bucket, settings.artifact_bucket):
            client.create_bucket(Bucket=bucket)
        port, journal = free_port(), tmp / "journal.sqlite3"
        api_env = environment(
            settings,
            API_HOST="127.0.0.1",
            API_PORT=str(port),
            API_JOURNAL_PATH=str(journal),
            TEMPORAL_ROLLOUT_PERCENTAGE=str(PERCENTAGE),
        )
        processes = start_processes(tmp, environment(settings), api_env)
        stack.callback(lambda: [p.kill() for p in processes])
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            await ready(http, url, processes[1])
            system = System(
                settings=settings,
                temporal=await Client.connect(temporal.address),
                url=url,
                api_pid=processes[1].pid,
                graph_pid=graph.pid,
                pids={
                    "worker": processes[0].pid,
                    "api": processes[1].pid,
                    "temporal": temporal.pid,
                    "graph": graph.pid,
                    "s3": s3.pid,
                },
                journal=journal,
                http=http,
            )
            return await measure(system, args)
    raise AssertionError("unreachable")


def start_processes(tmp: Path, worker_env: dict[str, str], api_env: dict[str, str]) -> list[Any]:
    """The worker and the API process, each logging to a file in `tmp`."""
    started = []
    for module, env in (("ingestion_worker.worker", worker_env), ("ingestion_api.main", api_env)):
        log = (tmp / f"{module}.log").open("wb")
        command = [sys.executable, "-m", module]
        started.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    return started


async def ready(http: aiohttp.ClientSession, url: str, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"the API process exited with {api.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url + "/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError("the API was not ready within 60 s")


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


def show(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    for name, figures in rows.items():
        cells = ", ".join(f"{key} {value:.1f}" for key, value in figures.items())
        print(f"  {name:<40} {cells}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per reads/s measurement")
    parser.add_argument("--documents", type=int, default=60, help="per ingestion phase and round")
    parser.add_argument("--rounds", type=int, default=2)
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

"""Temporal path vs legacy path, per document size, on local real servers (part of make bench).

Each run starts its own servers: the Temporal dev server (with the settings README's
"Temporal server settings" gives), FalkorDB speaking Bolt, moto S3 in a process of its
own, and one worker process. Then, for text documents of 2 KB, 10 KB and 1 MB:

1. latency one document at a time, the two paths alternating;
2. throughput with 16 documents in flight, one path at a time (each in two halves,
   legacy-temporal-temporal-legacy), and the CPU seconds per document of each process
   (/proc): the bench process (it runs the legacy path, as the API process would, and the
   Temporal client), the worker, the Temporal server, the graph DB and S3;
3. latency under load: one path probed one document at a time while the other path runs
   16 in flight (as during a rollout, where each path shares the machine with the other).

1 MB documents are seconds each (a thousand chunks to embed and write to the graph), so
they are fewer, 4 in flight instead of 16 (`Plan`).

Each size starts from empty graphs: the graph database has no indexes on the MERGE keys
(README: Performance), so a write scans its label's nodes and slows as the graph grows, and
without the reset the sizes measured first would slow the later sizes' writes on both paths
alike, which flatters the ratio (without it the full run read 10 KB at x1.2 where
`--sizes 10KB` read x1.8; with it the full run reads x1.8 too).

Ratios Temporal/legacy are taken within each run; every figure is printed as the median of
the runs with [min-max]. A run in which a server died (FalkorDB's Bolt port crashes now and
then under load) is said so and repeated on new servers (at most twice). Never a test: it
prints numbers.

    .venv/bin/python bench/pipeline_bench.py [--runs 3] [--documents 100] [--quick]
        [--sizes 2KB,10KB,1MB] [--colocated] [--server-defaults] [--json FILE]

--colocated runs the worker in the bench process, sharing the client's event loop, so that
workflows start eagerly (their first task comes back with the start call); --server-defaults
runs the dev server without README's settings, to show what they change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import neo4j
from _stats import CpuMeter, crash_lines, percentile, settings_for, spread
from ingestion_sandbox.servers.common import die_with_parent_hook
from ingestion_sandbox.servers.services import FalkorDBServer, S3ProcessServer, TemporalDevServer
from ingestion_worker.client import start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.pipeline import Pipeline, build_pipeline
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.worker import build_worker
from temporalio.client import Client

PATHS = ("legacy", "temporal")
SIZES = {"2 KB": 2_000, "10 KB": 10_000, "1 MB": 1_000_000}
OBJECTS = 40  # distinct S3 objects per size, read in turn
WORDS = "invoice INV-2024-0001 for order ORD-12345 sent to jane@example.com on 2024-01-31"

Ingest = Callable[[str, str], Awaitable[None]]  # (S3 key, document id)
Figures = dict[str, dict[str, float]]  # measure -> {"legacy", "temporal", "ratio"} -> value


def document(i: int, size: int) -> bytes:
    vocabulary = WORDS.split(" ")
    words = (vocabulary[(i + j) % len(vocabulary)] for j in range(size // 4))
    return " ".join(words).encode()[:size]


@dataclass(frozen=True)
class Plan:
    """How many documents each measurement of one size takes."""

    one_at_a_time: int
    throughput: int
    probes: int
    lanes: int

    @classmethod
    def for_size(cls, size: int, documents: int, lanes: int) -> Plan:
        if size < 100_000:
            return cls(documents, documents, documents, lanes)
        few = max(2, documents // 50)  # 1 MB: 2 of each for the default 100
        return cls(few, 2 * few, few, min(lanes, 4))


@dataclass
class Rig:
    """One run's servers and clients; `ingest[path]` ingests one document on that path."""

    ingest: dict[str, Ingest]
    pids: dict[str, int]
    run: str

    def key(self, size: str, i: int) -> str:
        return f"documents/bench/{size.replace(' ', '')}-{i % OBJECTS}"

    def document_id(self, path: str, size: str, i: int) -> str:
        return f"{path}-{self.run}-{size.replace(' ', '')}-{i}"

    async def one(self, path: str, size: str, i: int) -> float:
        """Seconds to ingest document `i` of `size` on `path`, start to result."""
        started = time.perf_counter()
        await self.ingest[path](self.key(size, i), self.document_id(path, size, i))
        return time.perf_counter() - started


async def one_at_a_time(rig: Rig, size: str, count: int) -> dict[str, list[float]]:
    """Latencies, one document at a time, the two paths alternating."""
    latencies: dict[str, list[float]] = {path: [] for path in PATHS}
    for i in range(count):
        for path in PATHS if i % 2 else reversed(PATHS):
            latencies[path].append(await rig.one(path, size, i))
    return latencies


async def in_flight(rig: Rig, path: str, size: str, ids: range, lanes: int) -> float:
    """Documents per second with `lanes` of `path` in flight."""
    queue = iter(ids)

    async def lane() -> None:
        for i in queue:
            await rig.one(path, size, i)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return len(ids) / (time.perf_counter() - started)


async def throughput(rig: Rig, size: str, count: int, lanes: int) -> Figures:
    """Documents per second with `lanes` in flight, and CPU seconds per document of each
    process, per path. Each path runs two halves of `count`, in the order legacy,
    temporal, temporal, legacy, so that a load the machine's other users add or remove
    meanwhile weighs on both paths alike."""
    seconds = dict.fromkeys(PATHS, 0.0)
    cpu: dict[str, dict[str, float]] = {path: {} for path in PATHS}
    halves = (count // 2, count - count // 2)
    for turn, path in enumerate(("legacy", "temporal", "temporal", "legacy")):
        half = halves[turn // 2]
        first = 10_000 + turn * count
        meter = CpuMeter(rig.pids)
        meter.start()
        started = time.perf_counter()
        await in_flight(rig, path, size, range(first, first + half), lanes)
        seconds[path] += time.perf_counter() - started
        for process, used in meter.stop().items():
            cpu[path][process] = cpu[path].get(process, 0.0) + used
    figures: Figures = {"docs/s": {path: count / seconds[path] for path in PATHS}}
    for process in rig.pids:
        figures[f"CPU ms/doc {process}"] = {p: cpu[p][process] / count * 1e3 for p in PATHS}
    return figures


async def under_load(rig: Rig, probe: str, size: str, count: int, lanes: int) -> list[float]:
    """Latencies of `count` `probe` documents, one at a time, while the other path keeps
    `lanes` documents in flight."""
    load = next(path for path in PATHS if path != probe)
    done = asyncio.Event()
    ids = iter(range(20_000, 1_000_000))

    async def lane() -> None:
        for i in ids:
            if done.is_set():
                return
            await rig.one(load, size, i)

    loading = asyncio.gather(*(lane() for _ in range(lanes)))
    await asyncio.sleep(0.5)  # let the load ramp up
    try:
        return [await rig.one(probe, size, 30_000 + i) for i in range(count)]
    finally:
        done.set()
        await loading


async def measure_size(rig: Rig, size: str, plan: Plan) -> Figures:
    """Every figure for one size, in one run, with the Temporal/legacy ratios."""
    figures: Figures = {}
    alone = await one_at_a_time(rig, size, plan.one_at_a_time)
    loaded = {p: await under_load(rig, p, size, plan.probes, plan.lanes) for p in PATHS}
    for name, latencies in (("one at a time", alone), ("under load", loaded)):
        for label, q in (("p50", 0.5), ("p99", 0.99)):
            figures[f"{label} ms {name}"] = {p: percentile(latencies[p], q) * 1e3 for p in PATHS}
    figures |= await throughput(rig, size, plan.throughput, plan.lanes)
    for values in figures.values():
        values["ratio"] = values["temporal"] / values["legacy"] if values["legacy"] else 0.0
    return figures


@contextlib.contextmanager
def servers(
    server_defaults: bool,
) -> Iterator[tuple[TemporalDevServer, S3ProcessServer, FalkorDBServer]]:
    plain: dict[str, Any] = {"sqlite_pragmas": (), "dynamic_config": {}}
    with (
        TemporalDevServer(**(plain if server_defaults else {})) as temporal,
        S3ProcessServer() as s3,
        FalkorDBServer() as graph,
    ):
        yield temporal, s3, graph


def clear_graphs(driver: neo4j.Driver) -> int:
    """Empty the graphs both paths write to (the worker's default database, the legacy
    path's "legacy"); how many nodes they held."""
    held = 0
    for database in (None, "legacy"):
        with driver.session(database=database) as session:
            held += session.run("MATCH (n) RETURN count(n) AS n").single(strict=True)["n"]
            session.run("MATCH (n) DETACH DELETE n").consume()
    return held


class ServerDied(RuntimeError):
    """A server of the run exited while it was being measured."""


def upload(s3: S3ProcessServer, bucket: str) -> None:
    client = boto3.client("s3", **s3.client_kwargs())
    client.create_bucket(Bucket=bucket)
    for size, length in SIZES.items():
        for i in range(OBJECTS):
            body = document(i, length)
            key = f"documents/bench/{size.replace(' ', '')}-{i}"
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/plain")


def start_worker(
    settings: WorkerSettings, activity_times: Path | None = None
) -> subprocess.Popen[bytes]:
    """The worker process; with `activity_times`, the one that also records when each
    activity runs in it (bench/_timed_worker.py, for bench/workflow_profile.py)."""
    env = dict(os.environ)
    for name, value in vars(settings).items():
        if value is not None:
            env[WorkerSettings.__dataclass_fields__[name].metadata["env"]] = str(value)
    command = [sys.executable, "-m", "ingestion_worker.worker"]
    if activity_times is not None:
        env["ACTIVITY_TIMES"] = str(activity_times)
        command = [sys.executable, str(Path(__file__).with_name("_timed_worker.py"))]
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent_hook(),  # never outlive an interrupted benchmark
    )


@contextlib.asynccontextmanager
async def worker_for(
    settings: WorkerSettings, client: Client, colocated: bool, activity_times: Path | None = None
) -> AsyncIterator[int]:
    """A worker process (its pid), or a worker in this process sharing the client; with
    `activity_times`, the process records when each activity runs in it (start_worker)."""
    if colocated:
        pipeline = build_pipeline(settings)
        with ThreadPoolExecutor(settings.max_concurrent_activities) as executor:
            async with build_worker(client, settings, pipeline, executor):
                yield os.getpid()
        pipeline.close()
        return
    process = start_worker(settings, activity_times)
    try:
        yield process.pid
    finally:
        process.terminate()
        process.wait(30)


def ingesters(settings: WorkerSettings, client: Client, legacy: Pipeline) -> dict[str, Ingest]:
    executor = ThreadPoolExecutor(max_workers=32)

    async def temporal_one(key: str, document_id: str) -> None:
        request = IngestDocumentInput(document_id, "bench", key=key)
        handle = await start_ingestion(client, request, settings.task_queue)
        result = await handle.result()
        assert result.status == IngestionStatus.COMPLETED, result.error_message

    async def legacy_one(key: str, document_id: str) -> None:
        request = IngestDocumentInput(document_id, "bench", key=key)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(executor, ingest_legacy, request, legacy)
        assert result.status == IngestionStatus.COMPLETED, result.error_message

    return {"legacy": legacy_one, "temporal": temporal_one}


async def one_run(run: int, args: argparse.Namespace) -> dict[str, Figures]:
    """Every size, measured on servers started for this run."""
    with servers(args.server_defaults) as (temporal, s3, graph):
        settings = settings_for(temporal, s3, graph)
        upload(s3, settings.documents_bucket)
        client = await Client.connect(temporal.address)
        legacy = build_pipeline(replace(settings, neo4j_database="legacy"))
        # Never closed: FalkorDB's Bolt port drops later handshakes after a GOODBYE (graph.py).
        graphs = neo4j.GraphDatabase.driver(graph.bolt_uri, auth=None)
        async with worker_for(settings, client, args.colocated) as worker_pid:
            pids = {"bench": os.getpid(), "worker": worker_pid, "temporal": temporal.pid}
            pids |= {"graph DB": graph.pid, "S3": s3.pid}
            if args.colocated:
                del pids["worker"]  # it is the bench process
            rig = Rig(ingesters(settings, client, legacy), pids, f"r{run}{uuid.uuid4().hex[:4]}")
            for i in range(10):  # connections, caches, parsers loaded on first use
                await rig.one("temporal", "10 KB", 40_000 + i)
                await rig.one("legacy", "10 KB", 40_000 + i)
            results = {}
            for size, length in SIZES.items():
                if size.replace(" ", "") not in args.sizes.split(","):
                    continue
                plan = Plan.for_size(length, args.documents, args.concurrency)
                held = clear_graphs(graphs)
                print(f"run {run + 1}, {size}: graphs emptied ({held} nodes)", flush=True)
                try:
                    results[size] = await measure_size(rig, size, plan)
                except Exception as exc:  # a server died? say which, with its last words
                    dead = [s for s in (temporal, s3, graph) if not s.running]
                    for server in dead or (temporal, s3, graph):
                        last_words = "\n".join([*crash_lines(server), server.log_tail(40)])
                        print(f"--- {server.name}: {last_words}", file=sys.stderr)
                    if dead:
                        names = ", ".join(s.name for s in dead)
                        raise ServerDied(f"{names} died during {size}") from exc
                    raise
                print(f"run {run + 1}, {size}: {headline(results[size])}", flush=True)
        legacy.close()
    return results


def headline(figures: Figures) -> str:
    """One run's Temporal/legacy ratios for one size, as it ends (the summary comes last)."""
    shown = ("p50 ms one at a time", "p99 ms one at a time", "docs/s", "p50 ms under load")
    return ", ".join(
        f"{m} x{figures[m]['ratio']:.2f} ({figures[m]['temporal']:.1f} vs "
        f"{figures[m]['legacy']:.1f})"
        for m in shown
    )


REPEATS = 2  # FalkorDB died in 3 of 6 run attempts of one `make bench` (README)


def measured_run(run: int, args: argparse.Namespace) -> dict[str, Figures]:
    """One run; repeated on new servers (at most REPEATS times) if a server died, and said so."""
    for _ in range(REPEATS):
        try:
            return asyncio.run(one_run(run, args))
        except ServerDied as died:
            print(f"run {run + 1}: {died}; repeating the run on new servers", flush=True)
    return asyncio.run(one_run(run, args))


def summarize(runs: list[dict[str, Figures]]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """size -> measure -> column -> [median, min, max] over the runs."""
    summary: dict[str, dict[str, dict[str, list[float]]]] = {}
    for size, figures in runs[0].items():
        summary[size] = {
            measure: {
                column: list(spread([run[size][measure][column] for run in runs]))
                for column in columns
            }
            for measure, columns in figures.items()
        }
    return summary


def print_summary(summary: dict[str, dict[str, dict[str, list[float]]]], runs: int) -> None:
    def cell(values: list[float], ratio: bool = False) -> str:
        fmt = "x{:.2f} [{:.2f}-{:.2f}]" if ratio else "{:.1f} [{:.1f}-{:.1f}]"
        return fmt.format(*values)

    for size, measures in summary.items():
        print(f"\n{size} documents: median of {runs} run(s) [min-max]; ratio = temporal/legacy")
        print(f"{'measure':<28}{'legacy':>22}{'temporal':>22}{'ratio':>22}")
        for measure, columns in measures.items():
            row = [cell(columns[p]) for p in PATHS] + [cell(columns["ratio"], ratio=True)]
            print(f"{measure:<28}" + "".join(f"{c:>22}" for c in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--documents", type=int, default=100, help="per measurement and size")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="one run of 20 documents")
    parser.add_argument("--sizes", default="2KB,10KB,1MB", help="which sizes to measure")
    parser.add_argument("--colocated", action="store_true", help="worker in this process")
    parser.add_argument("--server-defaults", action="store_true", help="plain dev server")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.documents = 1, 20
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    runs = [measured_run(run, args) for run in range(args.runs)]
    summary = summarize(runs)
    print_summary(summary, args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()

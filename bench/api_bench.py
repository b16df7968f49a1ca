"""What the ingestion API costs per document before it answers 202, per path.

Starts Temporal (dev server), FalkorDB (Bolt) and moto S3, an in-process Temporal
worker, and real `ingestion-api` processes (`python -m ingestion_api.main`, configured
by the environment as in production), one per variant:

- legacy, journal sync=normal (the default): the acceptance is committed before the 202;
- legacy, journal sync=full: one fsync per commit (for a journal that must survive the node);
- legacy, journal in memory (API_JOURNAL_PATH unset): what the journal itself costs;
- Temporal, journal sync=normal: the StartWorkflow round trip dominates.

The client is this process, a plain keep-alive HTTP/1.1 connection (http.client), so the
API process is measured alone, as a user's client would see it. Each document is run to
its end (status polled, untimed) before the next request is sent, so background pipeline
work never overlaps the measurement: these are acceptance costs on an idle process.
Each run measures every variant in turn; the summary is the median of the runs' p50 (and
p99), with their min and max.

    .venv/bin/python bench/api_bench.py [--documents 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path

import boto3
from _stats import percentile, settings_for
from ingestion_sandbox.servers.services import (
    FalkorDBServer,
    S3Server,
    TemporalDevServer,
    free_port,
)
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.worker import build_worker
from temporalio.client import Client

SOURCE = "bench"
WARM_UP = 10
BODY = (b"Invoice INV-2024-0001 for order ORD-12345 sent to jane@example.com. " * 30)[:2000]
FINAL = ("completed", "failed")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    percentage: int
    journal: str | None  # None: in memory; else the sync mode


VARIANTS = (
    Variant("legacy, journal sync=normal", 0, "normal"),
    Variant("legacy, journal sync=full", 0, "full"),
    Variant("legacy, journal in memory", 0, None),
    Variant("temporal, journal sync=normal", 100, "normal"),
)


def upload(s3: S3Server, settings: WorkerSettings, ids: list[str]) -> None:
    """The documents, where the pipeline looks for them by default."""
    client = boto3.client("s3", **s3.client_kwargs())
    for name in (settings.documents_bucket, settings.artifact_bucket):
        client.create_bucket(Bucket=name)
    for document_id in ids:
        client.put_object(
            Bucket=settings.documents_bucket,
            Key=f"{settings.documents_prefix}/{SOURCE}/{document_id}",
            Body=BODY,
            ContentType="text/plain",
        )


def environment(settings: WorkerSettings) -> dict[str, str]:
    """The worker settings as the environment variables the API process reads them from."""
    env = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[field.metadata["env"]] = text
    return env


@contextmanager
def api_process(settings: WorkerSettings, variant: Variant, tmp: Path) -> Iterator[str]:
    """A real `ingestion-api` process for one variant; yields its host:port."""
    port = free_port()
    env = {
        **os.environ,
        **environment(settings),
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "TEMPORAL_ROLLOUT_PERCENTAGE": str(variant.percentage),
    }
    env.pop("API_JOURNAL_PATH", None)
    if variant.journal is not None:
        env["API_JOURNAL_PATH"] = str(tmp / f"journal-{port}.sqlite3")
        env["API_JOURNAL_SYNC"] = variant.journal
    log = (tmp / f"api-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ingestion_api.main"], env=env, stdout=log, stderr=log
    )
    try:
        wait_ready(f"127.0.0.1:{port}", process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(60)
        log.close()


def wait_ready(address: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API process exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection(address, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API at {address} was not ready within {timeout:g} s")


def post(connection: http.client.HTTPConnection, document_id: str) -> float:
    """Seconds from sending the POST to having read the whole 202."""
    body = json.dumps({"source": SOURCE, "document_id": document_id}).encode()
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    connection.request("POST", "/v1/documents", body, headers)
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 202:
        raise RuntimeError(f"{document_id}: {response.status} {answer!r}")
    return elapsed


def wait_finished(connection: http.client.HTTPConnection, document_id: str) -> None:
    """Untimed: poll the status until the document has its result."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        connection.request("GET", f"/v1/documents/{SOURCE}/{document_id}")
        response = connection.getresponse()
        view = json.loads(response.read())
        if response.status == 200 and view["status"] in FINAL:
            if view["status"] != "completed":
                raise RuntimeError(f"{document_id} failed: {view}")
            return
        time.sleep(0.005)
    raise RuntimeError(f"{document_id} did not finish within 60 s")


def measure(address: str, ids: list[str]) -> list[float]:
    """Seconds per POST -> 202, sequential, each document finished before the next."""
    connection = http.client.HTTPConnection(address, timeout=30)
    took = []
    for i, document_id in enumerate(ids):
        elapsed = post(connection, document_id)
        wait_finished(connection, document_id)
        if i >= WARM_UP:
            took.append(elapsed)
    connection.close()
    return took


async def run_all(count: int, runs: int) -> dict[str, list[list[float]]]:
    """Every variant, `runs` times, against one set of servers and one worker."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    per = count + WARM_UP
    ids = {
        (v.name, r): [f"v{n}-r{r}-{i}" for i in range(per)]
        for n, v in enumerate(VARIANTS)
        for r in range(runs)
    }
    results: dict[str, list[list[float]]] = {v.name: [] for v in VARIANTS}
    with ExitStack() as servers, tempfile.TemporaryDirectory() as tmp:
        temporal = servers.enter_context(TemporalDevServer())
        s3 = servers.enter_context(S3Server())
        graph = servers.enter_context(FalkorDBServer())
        settings = settings_for(
            temporal,
            s3,
            graph,
            documents_bucket="bench-documents",
            artifact_bucket="bench-artifacts",
            embedding_dimensions=256,
        )
        upload(s3, settings, [i for group in ids.values() for i in group])
        client = await Client.connect(temporal.address)
        pipeline = build_pipeline(settings)
        async with AsyncExitStack() as stack:
            executor = stack.enter_context(ThreadPoolExecutor(settings.max_concurrent_activities))
            await stack.enter_async_context(build_worker(client, settings, pipeline, executor))
            with ExitStack() as processes:  # closed first, while Temporal is still up
                apis = {
                    v.name: processes.enter_context(api_process(settings, v, Path(tmp)))
                    for v in VARIANTS
                }
                for run in range(runs):
                    for variant in VARIANTS:
                        group = ids[variant.name, run]
                        took = await asyncio.to_thread(measure, apis[variant.name], group)
                        results[variant.name].append(took)
                        p50 = percentile(took, 0.5) * 1e3
                        print(f"run {run + 1}: {variant.name}: p50 {p50:.2f} ms", flush=True)
        pipeline.close()
    return results


def report(results: dict[str, list[list[float]]], count: int) -> None:
    runs = len(next(iter(results.values())))
    print(
        f"\nAPI POST -> 202, client in another process: {count} sequential requests per "
        f"variant and run, {runs} runs; median of the runs [min - max], ms\n"
    )
    print(f"{'variant':<32}{'p50':>22}{'p99':>22}")
    for name, per_run in results.items():
        cells = []
        for q in (0.5, 0.99):
            values = [percentile(took, q) * 1e3 for took in per_run]
            cells.append(f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]")
        print(f"{name:<32}{cells[0]:>22}{cells[1]:>22}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100, help="requests per variant and run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = asyncio.run(run_all(args.documents, args.runs))
    report(results, args.documents)
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK's core can crash at interpreter exit (REAL-PARTS.md)


if __name__ == "__main__":
    main()

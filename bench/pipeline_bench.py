"""Temporal path vs legacy path on the same 10 KB text documents, against local real servers.

Starts Temporal (dev server), FalkorDB (Bolt), moto S3, and one worker *process*;
prints p50/p99 latency (one document at a time) and throughput (N in flight) per path.

    .venv/bin/python bench/pipeline_bench.py [--documents 200] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import boto3
from _stats import percentile, settings_for
from ingestion_sandbox.servers.services import FalkorDBServer, S3Server, TemporalDevServer
from ingestion_worker.client import start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.settings import WorkerSettings
from temporalio.client import Client

WORDS = [
    "invoice",
    "INV-2024-0001",
    "for",
    "order",
    "ORD-12345",
    "sent",
    "to",
    "jane@example.com",
    "on",
    "2024-01-31",
]


def document(i: int, size: int = 10_000) -> bytes:
    words = (WORDS[(i + j) % len(WORDS)] for j in range(size))
    return " ".join(words).encode()[:size]


async def measure(
    run_one: Callable[[int], Awaitable[None]], count: int, concurrency: int
) -> tuple[list[float], float]:
    """Latencies one at a time, then throughput with `concurrency` in flight."""
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        await run_one(i)
        latencies.append(time.perf_counter() - started)
    queue = iter(range(count, 2 * count))

    async def lane() -> None:
        for i in queue:
            await run_one(i)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return latencies, count / (time.perf_counter() - started)


def start_worker(settings: WorkerSettings) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for name, value in vars(settings).items():
        field = WorkerSettings.__dataclass_fields__[name]
        if value is not None:
            env[field.metadata["env"]] = str(value)
    return subprocess.Popen(
        [sys.executable, "-m", "ingestion_worker.worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def bench(count: int, concurrency: int) -> dict[str, dict[str, float]]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with TemporalDevServer() as temporal, S3Server() as s3, FalkorDBServer() as graph:
        settings = settings_for(temporal, s3, graph)
        client_s3 = boto3.client("s3", **s3.client_kwargs())
        client_s3.create_bucket(Bucket=settings.documents_bucket)
        for i in range(2 * count + 20):
            client_s3.put_object(
                Bucket=settings.documents_bucket,
                Key=f"documents/bench/d{i}",
                Body=document(i),
                ContentType="text/plain",
            )
        worker = start_worker(replace(settings))
        try:
            client = await Client.connect(temporal.address)
            pipeline = build_pipeline(replace(settings, neo4j_database="legacy"))
            executor = ThreadPoolExecutor(max_workers=concurrency)
            loop = asyncio.get_running_loop()

            async def temporal_one(i: int) -> None:
                request = IngestDocumentInput(f"d{i}", "bench")
                handle = await start_ingestion(
                    client, request, settings.task_queue, workflow_id=f"t-{uuid.uuid4().hex}"
                )
                assert (await handle.result()).status == IngestionStatus.COMPLETED

            async def legacy_one(i: int) -> None:
                request = IngestDocumentInput(f"d{i}", "bench")
                result = await loop.run_in_executor(executor, ingest_legacy, request, pipeline)
                assert result.status == IngestionStatus.COMPLETED, result.error_message

            for warm in range(10):  # connections, caches, the worker's sticky cache
                await temporal_one(2 * count + warm)
                await legacy_one(2 * count + 10 + warm)
            rows = []
            for name, one in (("legacy", legacy_one), ("temporal", temporal_one)):
                latencies, throughput = await measure(one, count, concurrency)
                rows.append((name, latencies, throughput))
        finally:
            worker.terminate()
            worker.wait(30)
    print(
        f"\n{count} documents of 10 KB per measurement, throughput with {concurrency} in flight, "
        "one worker process\n"
    )
    print(f"{'path':<10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'docs/s':>10}")
    for name, latencies, throughput in rows:
        print(
            f"{name:<10}{percentile(latencies, 0.5) * 1e3:>10.1f}"
            f"{percentile(latencies, 0.99) * 1e3:>10.1f}"
            f"{statistics.mean(latencies) * 1e3:>10.1f}{throughput:>10.1f}"
        )
    (_, leg, leg_tp), (_, tem, tem_tp) = rows
    results = {
        name: {
            "p50_ms": percentile(lat, 0.5) * 1e3,
            "p99_ms": percentile(lat, 0.99) * 1e3,
            "docs_per_s": tp,
        }
        for name, lat, tp in rows
    }
    print(
        f"\ntemporal/legacy: p50 x{percentile(tem, 0.5) / percentile(leg, 0.5):.2f}, "
        f"p99 x{percentile(tem, 0.99) / percentile(leg, 0.99):.2f}, "
        f"throughput x{tem_tp / leg_tp:.2f}"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = asyncio.run(bench(args.documents, args.concurrency))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""What the ingestion API costs per document before it answers 202, per path.

Starts Temporal (dev server), FalkorDB (Bolt) and moto S3, an in-process Temporal
worker and two API replicas (aiohttp, as the test fixture builds them): one routing
everything to the legacy path (percentage 0), one to Temporal (percentage 100).

For each path, N sequential requests, each for a new 2 KB document:
- "HTTP": from the POST /v1/documents being sent to the 202 being read (aiohttp
  client in the same process and event loop as the server);
- "submit()": `IngestionService.submit` called directly, no HTTP, so the difference
  is the cost of HTTP, JSON and aiohttp.
Each document is run to its end (`service.drain()`) before the next request, outside
the timed section, so background pipeline work never competes with the measurement:
these are acceptance costs on an otherwise idle process.

    .venv/bin/python bench/api_bench.py [--documents 300]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
import boto3
from _stats import percentile, settings_for
from aiohttp import web
from ingestion_api.app import make_app
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_api.service import IngestionService
from ingestion_api.settings import ApiSettings
from ingestion_sandbox.servers.services import (
    FalkorDBServer,
    S3Server,
    TemporalDevServer,
    free_port,
)
from ingestion_worker.models import IngestDocumentInput
from ingestion_worker.pipeline import Pipeline, build_pipeline
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.worker import build_worker
from temporalio.client import Client

SOURCE = "bench"
WARM_UP = 20
BODY = (b"Invoice INV-2024-0001 for order ORD-12345 sent to jane@example.com. " * 30)[:2000]


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


@asynccontextmanager
async def replica(
    client: Client, settings: WorkerSettings, pipeline: Pipeline, percentage: int
) -> AsyncIterator[tuple[str, IngestionService]]:
    """One API replica over real HTTP (as tests/integration/api/conftest.py builds it)."""
    routing = StaticRoutingSource(RoutingConfig(percentage=percentage))
    await routing.start()
    api = ApiSettings(host="127.0.0.1", port=free_port())
    service = IngestionService(routing, client, settings.task_queue, pipeline)
    runner = web.AppRunner(make_app(service, api), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, api.host, api.port).start()
    try:
        yield f"http://{api.host}:{api.port}", service
    finally:
        await runner.shutdown()
        await service.drain()
        await runner.cleanup()
        service.close()


HTTP, DIRECT = "HTTP POST -> 202", "submit() only"


async def measure_path(
    url: str, service: IngestionService, http: aiohttp.ClientSession, ids: list[str]
) -> dict[str, list[float]]:
    """Seconds per document, HTTP and submit() alternating; the first 2*WARM_UP not kept."""

    async def over_http(document_id: str) -> None:
        body = {"source": SOURCE, "document_id": document_id}
        async with http.post(f"{url}/v1/documents", json=body) as response:
            await response.read()
            assert response.status == 202, await response.text()

    async def direct(document_id: str) -> None:
        await service.submit(IngestDocumentInput(document_id, SOURCE))

    ways: dict[str, Callable[[str], Awaitable[None]]] = {HTTP: over_http, DIRECT: direct}
    took: dict[str, list[float]] = {HTTP: [], DIRECT: []}
    for i, document_id in enumerate(ids):
        name = (HTTP, DIRECT)[i % 2]  # alternating, so both see the same conditions
        started = time.perf_counter()
        await ways[name](document_id)
        elapsed = time.perf_counter() - started
        await service.drain()  # untimed: the document runs to its end before the next
        if i >= 2 * WARM_UP:  # connections, caches, the worker's sticky cache
            took[name].append(elapsed)
    return took


async def run_paths(
    temporal: TemporalDevServer, s3: S3Server, graph: FalkorDBServer, count: int
) -> dict[str, dict[str, list[float]]]:
    """Both paths against one worker, one pipeline, two replicas."""
    settings = settings_for(
        temporal,
        s3,
        graph,
        documents_bucket="bench-documents",
        artifact_bucket="bench-artifacts",
        embedding_dimensions=256,
    )
    per_path = 2 * (count + WARM_UP)
    ids = {path: [f"{path}-{i}" for i in range(per_path)] for path in ("legacy", "temporal")}
    upload(s3, settings, ids["legacy"] + ids["temporal"])
    client = await Client.connect(temporal.address)
    pipeline = build_pipeline(settings)
    results = {}
    async with AsyncExitStack() as stack:
        executor = stack.enter_context(ThreadPoolExecutor(settings.max_concurrent_activities))
        await stack.enter_async_context(build_worker(client, settings, pipeline, executor))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        for path, percentage in (("legacy", 0), ("temporal", 100)):
            url, service = await stack.enter_async_context(
                replica(client, settings, pipeline, percentage)
            )
            results[path] = await measure_path(url, service, http, ids[path])
    pipeline.close()
    return results


def report(results: dict[str, dict[str, list[float]]], count: int) -> None:
    print(
        f"\nAPI acceptance overhead per document: {count} sequential requests per row, "
        "each document finished before the next\n"
    )
    print(f"{'path':<10}{'measured':<20}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for path, rows in results.items():
        for name, took in rows.items():
            print(
                f"{path:<10}{name:<20}{percentile(took, 0.5) * 1e3:>9.2f}"
                f"{percentile(took, 0.99) * 1e3:>9.2f}{statistics.mean(took) * 1e3:>9.2f}"
            )
        share = percentile(rows[HTTP], 0.5) - percentile(rows[DIRECT], 0.5)
        print(f"{path:<10}{'HTTP share (p50)':<20}{share * 1e3:>9.2f}")


async def bench(count: int) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    with TemporalDevServer() as temporal, S3Server() as s3, FalkorDBServer() as graph:
        results = await run_paths(temporal, s3, graph, count)
    report(results, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=300, help="requests per measurement")
    args = parser.parse_args()
    asyncio.run(bench(args.documents))
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK's core can crash at interpreter exit (REAL-PARTS.md)


if __name__ == "__main__":
    main()

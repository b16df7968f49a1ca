"""A minute without the graph database and a minute without S3, on both paths, in one
scenario: no document fails, each says "retrying: <reason>" while it waits, and each is
written to the graph exactly once when the servers come back.

The outages are real: the test's own FalkorDB and moto servers are stopped and started
again on the same ports (moto keeps its buckets, FalkorDB starts empty: every write here
happens after it is back). The retry budgets are the defaults (S3_RETRY_SECONDS,
GRAPH_RETRY_SECONDS): a 60 s outage is what they are sized for.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from ingestion_sandbox.servers.services import FalkorDBServer, S3Server, free_port
from ingestion_worker.client import ingestion_status, start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import IngestDocumentInput, IngestDocumentResult, IngestionStatus
from ingestion_worker.pipeline import Pipeline, build_pipeline
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.worker import build_worker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]

OUTAGE_SECONDS = 60.0
PER_PATH = 3  # documents per path caught by each outage
BODY = ("Order ORD-12345 for jane.doe@example.com, invoiced 2024-01-31. " * 40).encode()

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")


@pytest.fixture
def own_servers() -> Iterator[tuple[S3Server, FalkorDBServer]]:
    """S3 and the graph DB for this test alone: it stops and restarts them."""
    with S3Server(port=free_port()) as s3, FalkorDBServer() as graph:
        yield s3, graph


@dataclass
class Rig:
    """Both paths on the test's servers: a worker in this process, and the legacy runner."""

    client: Client
    settings: WorkerSettings
    pipeline: Pipeline
    threads: ThreadPoolExecutor
    #: The last status each legacy document reported, and every one it reported.
    legacy_seen: dict[str, list[str]] = field(default_factory=dict)

    async def legacy(self, document_id: str) -> IngestDocumentResult:
        seen = self.legacy_seen.setdefault(document_id, [])
        request = IngestDocumentInput(document_id, "crm", key="doc.txt")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.threads, ingest_legacy, request, self.pipeline, seen.append
        )

    async def temporal(self, document_id: str) -> IngestDocumentResult:
        request = IngestDocumentInput(document_id, "crm", key="doc.txt")
        handle = await start_ingestion(self.client, request, self.settings.task_queue)
        return await handle.result()

    async def retrying(self, path: str, document_id: str) -> str | None:
        """The "retrying: ..." status the document shows now, if any."""
        if path == "legacy":
            seen = self.legacy_seen.get(document_id) or [""]
            return seen[-1] if seen[-1].startswith("retrying: ") else None
        try:
            view = await ingestion_status(self.client, "crm", document_id)
        except RPCError as exc:  # started in the background: it may not exist yet
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return view.retrying


@pytest.fixture
async def rig(
    own_servers: tuple[S3Server, FalkorDBServer], temporal_server: Any
) -> AsyncIterator[Rig]:
    s3, graph = own_servers
    settings = WorkerSettings(
        temporal_address=temporal_server.address,
        task_queue=f"outage-{uuid.uuid4().hex[:8]}",
        s3_endpoint_url=s3.endpoint_url,
        documents_bucket="outage-docs",
        neo4j_uri=graph.bolt_uri,
        neo4j_max_message_bytes=4000,
        metrics_port=0,
    )
    boto3.client("s3", **s3.client_kwargs()).create_bucket(Bucket=settings.documents_bucket)
    boto3.client("s3", **s3.client_kwargs()).put_object(
        Bucket=settings.documents_bucket, Key="doc.txt", Body=BODY, ContentType="text/plain"
    )
    client = await Client.connect(temporal_server.address)
    pipeline = build_pipeline(settings)
    workers = settings.max_concurrent_activities
    with ThreadPoolExecutor(workers) as activities, ThreadPoolExecutor(16) as threads:
        async with build_worker(client, settings, pipeline, activities):
            yield Rig(client, settings, pipeline, threads)
    pipeline.close()


async def wait_retrying(rig: Rig, batch: dict[str, str], reason: str, within: float) -> None:
    """Until every document of `batch` (id -> path) says "retrying: <reason>..."."""
    deadline = time.monotonic() + within
    waiting = dict(batch)
    while waiting:
        for document_id, path in list(waiting.items()):
            status = await rig.retrying(path, document_id)
            if status is not None and status.startswith(f"retrying: {reason}"):
                del waiting[document_id]
        assert time.monotonic() < deadline, f"never retrying {reason}: {sorted(waiting)}"
        await asyncio.sleep(0.2)


def start(rig: Rig, batch: dict[str, str]) -> dict[str, asyncio.Future[IngestDocumentResult]]:
    runs = {"legacy": rig.legacy, "temporal": rig.temporal}
    return {doc: asyncio.ensure_future(runs[path](doc)) for doc, path in batch.items()}


def batch_of(name: str) -> dict[str, str]:
    return {f"{name}-{path}-{i}": path for path in ("legacy", "temporal") for i in range(PER_PATH)}


async def test_a_minute_without_s3_and_without_the_graph_db_fails_no_document(
    rig: Rig, own_servers: tuple[S3Server, FalkorDBServer]
) -> None:
    s3, graph = own_servers
    # given the graph DB down, and documents on both paths stuck at their graph write
    graph.stop()
    graph_down = time.monotonic()
    writes = batch_of("w")
    running = start(rig, writes)
    await wait_retrying(rig, writes, "GraphUnavailableError", within=30)
    # and S3 down too, and more documents stuck at their download
    s3.stop()
    s3_down = time.monotonic()
    downloads = batch_of("d")
    running |= start(rig, downloads)
    await wait_retrying(rig, downloads, "TransientStorageError", within=30)
    # when each comes back after a minute
    await asyncio.sleep(graph_down + OUTAGE_SECONDS - time.monotonic())
    graph.start()
    await asyncio.sleep(s3_down + OUTAGE_SECONDS - time.monotonic())
    s3.start()
    results = dict(zip(running, await asyncio.gather(*running.values()), strict=True))
    # then no document failed, and the graph holds each once, every chunk once
    failed = {
        d: r.error_message for d, r in results.items() if r.status != IngestionStatus.COMPLETED
    }
    assert failed == {}
    for document_id, result in results.items():
        stored = rig.pipeline.graph.read_document("crm", document_id)
        assert stored is not None, document_id
        assert [c["index"] for c in stored["chunks"]] == list(range(result.chunk_count))

"""The `ingestion-worker` process itself: metrics, a kill mid-workflow, graceful SIGTERM.

The crash and shutdown tests run in both workflow shapes (pipeline_shapes.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ingestion_sandbox.servers.services import FalkorDBServer, bolt_handshake_ok, free_port
from ingestion_worker.backlog import task_queue_backlog
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.workflows import DocumentIngestionWorkflow
from pipeline_shapes import both_shapes
from sample_documents import text_document

pytestmark = pytest.mark.asyncio


def worker_env(settings: WorkerSettings, temporal_address: str, **extra: Any) -> dict[str, str]:
    """The environment a deployed worker would get, for these settings."""
    env = dict(os.environ)
    for field in dataclasses.fields(WorkerSettings):
        value = getattr(settings, field.name)
        if value is not None:
            env[field.metadata["env"]] = str(value)
    env["TEMPORAL_ADDRESS"] = temporal_address
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingestion_worker.worker"],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def metrics(self, port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str]) -> WorkerProcess:
        started.append(WorkerProcess(env, tmp_path / f"worker-{len(started)}.log"))
        return started[-1]

    yield start
    for worker in started:
        worker.stop(signal.SIGKILL)


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def reach_status(handle: Any, status: IngestionStatus, within: float = 30) -> None:
    """Poll the workflow's get_status query until it reports `status`."""
    deadline = time.monotonic() + within
    seen = None
    while time.monotonic() < deadline:
        seen = (await handle.query(DocumentIngestionWorkflow.get_status)).status
        if seen == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow stayed at {seen}, never reached {status}")


async def test_worker_exports_the_metric_contract(
    spawn: Any,
    settings: WorkerSettings,
    temporal_server: Any,
    temporal_client: Any,
    s3: Any,
    bucket: str,
):
    # given a worker process with its /metrics port
    port = free_port()
    worker = spawn(
        worker_env(
            settings,
            temporal_server.address,
            METRICS_PORT=port,
            METRICS_HOST="127.0.0.1",
            BACKLOG_REFRESH_SECONDS=0.5,
        )
    )
    s3.put_object(Bucket=bucket, Key="m.txt", Body=text_document(3_000))
    # when it ingests a document
    handle = await start_ingestion(
        temporal_client, IngestDocumentInput("m", "crm", key="m.txt"), settings.task_queue
    )
    assert (await handle.result()).status == IngestionStatus.COMPLETED
    # then the contract's series are exported with their labels
    drained = f'temporal_task_queue_backlog{{task_queue="{settings.task_queue}"}} 0.0'
    text = wait_for(lambda: drained in (t := worker.metrics(port)) and t, 15, "backlog at 0")
    assert 'ingestion_activity_duration_seconds_count{activity="download"} 1.0' in text
    assert 'ingestion_activity_duration_seconds_count{activity="write_graph"} 1.0' in text
    assert "ingestion_db_connection_errors_total" in text
    assert "ingestion_activity_failures_total" in text
    # and SIGTERM ends it cleanly
    assert worker.stop(signal.SIGTERM) == 0


@both_shapes
async def test_worker_killed_mid_write_is_replaced_and_nothing_is_lost_or_duplicated(
    shape: str,
    spawn: Any,
    settings: WorkerSettings,
    temporal_server: Any,
    temporal_client: Any,
    s3: Any,
    bucket: str,
    pipeline: Any,
):
    # given a worker whose write step is slow, ingesting a 10 KB document
    s3.put_object(Bucket=bucket, Key="k.txt", Body=text_document(10_000))
    first = spawn(worker_env(settings, temporal_server.address, FAULT_DELAY_SECONDS=30))
    handle = await start_ingestion(
        temporal_client, IngestDocumentInput("k", "crm", key="k.txt"), settings.task_queue
    )
    await reach_status(handle, IngestionStatus.EMBEDDINGS_GENERATED)
    # when the worker is killed mid-write and a healthy one takes over
    first.stop(signal.SIGKILL)
    spawn(worker_env(settings, temporal_server.address))
    result = await asyncio.wait_for(handle.result(), timeout=90)
    # then the workflow completes and the graph holds each chunk and mention once
    assert result.status == IngestionStatus.COMPLETED
    stored = pipeline.graph.read_document("crm", "k")
    assert [c["index"] for c in stored["chunks"]] == list(range(result.chunk_count))
    assert stored["mentions"] == sorted((e.type, e.value, e.count) for e in result.entities)


@both_shapes
async def test_sigterm_lets_the_in_flight_activity_finish(
    shape: str,
    spawn: Any,
    settings: WorkerSettings,
    temporal_server: Any,
    temporal_client: Any,
    s3: Any,
    bucket: str,
    pipeline: Any,
):
    # given a worker in the middle of a 2-second write
    s3.put_object(Bucket=bucket, Key="g.txt", Body=text_document(3_000))
    worker = spawn(worker_env(settings, temporal_server.address, FAULT_DELAY_SECONDS=2))
    handle = await start_ingestion(  # one id per shape: this test leaves its workflow open
        temporal_client, IngestDocumentInput(f"g-{shape}", "crm", key="g.txt"), settings.task_queue
    )
    await reach_status(handle, IngestionStatus.EMBEDDINGS_GENERATED)
    # when it is asked to stop
    code = await asyncio.to_thread(worker.stop, signal.SIGTERM)
    # then it exits cleanly after the write landed in the graph
    assert code == 0
    assert pipeline.graph.read_document("crm", f"g-{shape}") is not None


async def test_a_stopped_worker_leaves_the_graph_db_answering(
    spawn: Any,
    settings: WorkerSettings,
    temporal_server: Any,
    temporal_client: Any,
    s3: Any,
    bucket: str,
):
    # given a worker that wrote four documents at once to a FalkorDB of this test's own
    with FalkorDBServer() as graph:
        env = worker_env(settings, temporal_server.address, NEO4J_URI=graph.bolt_uri)
        worker = spawn(env)
        s3.put_object(Bucket=bucket, Key="s.txt", Body=text_document(3_000))
        handles = [
            await start_ingestion(
                temporal_client,
                IngestDocumentInput(f"s{i}", "crm", key="s.txt"),
                settings.task_queue,
            )
            for i in range(4)
        ]
        for handle in handles:
            assert (await handle.result()).status == IngestionStatus.COMPLETED
        # when it stops
        assert await asyncio.to_thread(worker.stop, signal.SIGTERM) == 0
        # then the next connections of other clients get their Bolt handshake: the worker
        # sent no GOODBYE, each of which costs FalkorDB one later handshake (GraphWriter.close)
        assert [bolt_handshake_ok(graph.bolt_port, timeout=2.0) for _ in range(8)] == [True] * 8


async def test_backlog_counts_tasks_nobody_polls(temporal_client: Any):
    # given five workflows on a task queue without workers
    queue = f"idle-{time.monotonic_ns()}"
    for i in range(5):
        await temporal_client.start_workflow(
            DocumentIngestionWorkflow.run,
            IngestDocumentInput(f"b{i}", "crm"),
            id=f"{queue}-{i}",
            task_queue=queue,
        )
    # when the backlog is described; then all five are waiting (counts settle in a moment)
    seen = []
    for _ in range(50):
        seen.append(await task_queue_backlog(temporal_client, queue))
        if seen[-1] == 5:
            break
        await asyncio.sleep(0.1)
    assert seen[-1] == 5, seen
    for i in range(5):
        await temporal_client.get_workflow_handle(f"{queue}-{i}").terminate()

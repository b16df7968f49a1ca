"""Fixtures for pipeline tests: a per-test bucket and graph, settings pointing at the
real local servers, and an in-process Temporal worker on a private task queue."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from ingestion_worker.graph import GraphWriter
from ingestion_worker.pipeline import Pipeline, build_pipeline
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.worker import build_worker
from temporalio.client import Client

# FalkorDB's Bolt port crashes on requests over 4 KiB.
FALKORDB_MAX_MESSAGE = 4000

# boto3 wants credentials even for moto; real deployments get them from their environment.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")


@pytest.fixture
def s3(s3_server: Any) -> Any:
    return boto3.client("s3", **s3_server.client_kwargs())


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"docs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def make_settings(s3_server: Any, falkordb: Any, bucket: str) -> Callable[..., WorkerSettings]:
    """Settings for one test: its own bucket, graph and task queue; overrides by keyword."""
    base = WorkerSettings(
        s3_endpoint_url=s3_server.endpoint_url,
        documents_bucket=bucket,
        artifact_bucket=f"{bucket}-artifacts",
        neo4j_uri=falkordb.bolt_uri,
        neo4j_database=f"g{uuid.uuid4().hex[:12]}",
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        metrics_port=0,
        embedding_dimensions=256,
        neo4j_max_message_bytes=FALKORDB_MAX_MESSAGE,
    )

    def make(**overrides: Any) -> WorkerSettings:
        return dataclasses.replace(base, **overrides)

    return make


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., WorkerSettings]
) -> WorkerSettings:
    """This test's settings; `@pytest.mark.worker_settings(**overrides)` adjusts them."""
    marker = request.node.get_closest_marker("worker_settings")
    return make_settings(**(marker.kwargs if marker else {}))


@pytest.fixture(scope="session")
def shared_graph(falkordb: Any) -> Iterator[GraphWriter]:
    """One Bolt driver for the whole session (see GraphWriter: reconnects are costly)."""
    writer = GraphWriter.connect(
        falkordb.bolt_uri,
        None,
        None,
        connection_timeout=1.0,
        max_message_bytes=FALKORDB_MAX_MESSAGE,
    )
    yield writer
    writer.close()


@pytest.fixture
def pipeline(settings: WorkerSettings, shared_graph: GraphWriter) -> Iterator[Pipeline]:
    built = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    yield built
    built.close()


@pytest.fixture
async def temporal_client(temporal_server: Any) -> Client:
    return await Client.connect(temporal_server.address)


@dataclasses.dataclass
class RunningWorker:
    client: Client
    settings: WorkerSettings
    pipeline: Pipeline


@pytest.fixture
async def worker(
    temporal_client: Client, settings: WorkerSettings, pipeline: Pipeline
) -> AsyncIterator[RunningWorker]:
    """An in-process worker for this test's task queue, bound to its pipeline."""
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with build_worker(temporal_client, settings, pipeline, executor):
            yield RunningWorker(temporal_client, settings, pipeline)

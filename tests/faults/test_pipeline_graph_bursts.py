"""Bursts of 16 concurrent legacy writes against FalkorDB's Bolt port (issue 16, item 15).

Why the graph DB "stopped answering": FalkorDB's Bolt port drops the handshake of one new
connection for every connection a client closed gracefully (GOODBYE) before, whichever
client opens it. A worker process that stopped with 16 pooled connections made the next
16 connections of every other process hang until their timeout; a burst of 16 legacy
writes opens exactly that many, and with a few seconds of retries, documents failed.

What holds now, and is checked here at that load: a lost handshake costs one connection
timeout, is counted as a DB connection error and retried (the graph's outage budget), so
no document fails; and our processes no longer poison the port when they stop (the
worker leaves its connections to the OS at exit: test_worker_process.py checks that).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import neo4j
import pytest
from ingestion_sandbox.servers.services import FalkorDBServer, bolt_handshake_ok
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.metrics import DB_CONNECTION_ERRORS
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.settings import WorkerSettings

BURST = 16  # API_LEGACY_THREADS: the legacy documents one API process runs at once
BODY = ("Invoice INV-2024-0001 for order ORD-12345, jane.doe@example.com. " * 160).encode()

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")


@pytest.fixture
def graph() -> Iterator[FalkorDBServer]:
    """A FalkorDB of this test's own: it is poisoned on purpose."""
    with FalkorDBServer() as server:
        yield server


def close_gracefully_with(graph: FalkorDBServer, connections: int) -> None:
    """What a process that stops does: hold `connections` at once, then close the driver."""
    driver = neo4j.GraphDatabase.driver(graph.bolt_uri, auth=None)
    together = threading.Barrier(connections)

    def hold(_: int) -> None:
        with driver.session(database="other") as session:
            together.wait(timeout=30)
            list(session.run("RETURN 1"))

    with ThreadPoolExecutor(connections) as threads:
        list(threads.map(hold, range(connections)))
    driver.close()


def test_a_burst_after_another_process_closed_its_connections_loses_no_document(
    graph: FalkorDBServer, s3_server: Any
) -> None:
    # given FalkorDB after a process closed 16 connections gracefully
    bucket = f"burst-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", **s3_server.client_kwargs())
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="doc.txt", Body=BODY, ContentType="text/plain")
    close_gracefully_with(graph, BURST)
    settings = WorkerSettings(
        s3_endpoint_url=s3_server.endpoint_url,
        documents_bucket=bucket,
        neo4j_uri=graph.bolt_uri,
        neo4j_max_message_bytes=4000,
        neo4j_connection_timeout_seconds=1.0,
    )
    pipeline = build_pipeline(settings)
    errors_before = DB_CONNECTION_ERRORS.labels("neo4j")._value.get()
    # when 16 legacy documents are written at once, by a process with no connection yet
    requests = [IngestDocumentInput(f"b{i}", "crm", key="doc.txt") for i in range(BURST)]
    with ThreadPoolExecutor(BURST) as threads:
        results = list(threads.map(lambda r: ingest_legacy(r, pipeline), requests))
    # then every document is written, once
    assert [r.error_message for r in results if r.status != IngestionStatus.COMPLETED] == []
    for result in results:
        stored = pipeline.graph.read_document("crm", result.document_id)
        assert stored is not None and len(stored["chunks"]) == result.chunk_count
    # and the lost handshakes were seen, counted and retried, not hidden
    assert DB_CONNECTION_ERRORS.labels("neo4j")._value.get() - errors_before >= BURST
    assert bolt_handshake_ok(graph.bolt_port)
    pipeline.close()

"""Fault suite, API part (issue 16, items 1-2): SIGKILL the `ingestion-api` process with
documents in flight on both paths; every accepted document is still written exactly once
and its status is answered after the restart.

Everything is real and out of this process: the API and a Temporal worker run as the
production entry points (`python -m ingestion_api.main`, `python -m ingestion_worker.worker`)
configured by the environment, against the session's Temporal dev server, moto S3 and
FalkorDB (counted through the neo4j driver). The legacy path gets 2 threads, so most of its
documents are still queued in the API process when it is killed.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import neo4j
import pytest
from api_processes import API, WORKER, Processes, environment, wait_ready
from ingestion_api.routing import should_use_temporal
from ingestion_sandbox.servers.services import free_port
from ingestion_worker.settings import WorkerSettings

pytestmark = pytest.mark.asyncio

PER_PATH = 16
PERCENTAGE = 50
SOURCE = f"crash-{uuid.uuid4().hex[:8]}"
FINISH_TIMEOUT_S = 120.0
# FalkorDB's Bolt port crashes on requests over 4 KiB (see README: stand-ins).
FALKORDB_MAX_MESSAGE = 4000


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop()


@pytest.fixture
def settings(temporal_server: Any, s3_server: Any, falkordb: Any) -> WorkerSettings:
    """This test's own bucket, graph and task queue on the session's servers."""
    name = uuid.uuid4().hex[:10]
    s3 = boto3.client("s3", **s3_server.client_kwargs())
    for bucket in (f"crash-{name}", f"crash-{name}-artifacts"):
        s3.create_bucket(Bucket=bucket)
    return WorkerSettings(
        temporal_address=temporal_server.address,
        task_queue=f"crash-{name}",
        s3_endpoint_url=s3_server.endpoint_url,
        documents_bucket=f"crash-{name}",
        artifact_bucket=f"crash-{name}-artifacts",
        neo4j_uri=falkordb.bolt_uri,
        neo4j_database=f"g{name}",
        neo4j_max_message_bytes=FALKORDB_MAX_MESSAGE,
        embedding_dimensions=64,
        metrics_port=0,
    )


def documents(settings: WorkerSettings, s3_server: Any) -> dict[str, list[str]]:
    """PER_PATH ids per path at PERCENTAGE, each a ~7 KB text in S3."""
    ids: dict[str, list[str]] = {"legacy": [], "temporal": []}
    n = 0
    while min(len(v) for v in ids.values()) < PER_PATH:
        document_id = f"doc-{n}"
        path = "temporal" if should_use_temporal(document_id, PERCENTAGE) else "legacy"
        if len(ids[path]) < PER_PATH:
            ids[path].append(document_id)
        n += 1
    s3 = boto3.client("s3", **s3_server.client_kwargs())
    text = ("Invoice INV-2024-0001 for order ORD-12345, mail jane@example.com. " * 100).encode()
    for document_id in ids["legacy"] + ids["temporal"]:
        key = f"{settings.documents_prefix}/{SOURCE}/{document_id}"
        s3.put_object(
            Bucket=settings.documents_bucket, Key=key, Body=text, ContentType="text/plain"
        )
    return ids


async def statuses(url: str, ids: list[str], http: aiohttp.ClientSession) -> dict[str, Any]:
    """Each document's status answer (HTTP status, body) from the API."""
    answers = {}
    for document_id in ids:
        async with http.get(f"{url}/v1/documents/{SOURCE}/{document_id}") as response:
            answers[document_id] = (response.status, await response.json())
    return answers


def unfinished_in_journal(path: Path) -> dict[str, int]:
    """Unfinished records per path, read from the journal file the killed process left."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT path, count(*) FROM documents WHERE finished_at IS NULL GROUP BY path"
        ).fetchall()
    return dict(rows)


def documents_in_graph(settings: WorkerSettings) -> dict[str, int]:
    """document_id -> Document nodes with it. FalkorDB's Bolt port loses the handshake of
    the first connection after another client's graceful close: short timeouts, retried."""
    for attempt in range(5):
        driver = neo4j.GraphDatabase.driver(
            settings.neo4j_uri, auth=None, connection_timeout=2, connection_acquisition_timeout=4
        )
        try:
            with driver.session(database=settings.neo4j_database) as session:
                rows = session.run(  # other tests' documents may share the graph server
                    "MATCH (d:Document {source: $source}) "
                    "RETURN d.document_id AS id, count(d) AS n",
                    source=SOURCE,
                )
                return {row["id"]: int(row["n"]) for row in rows}
        except neo4j.exceptions.ServiceUnavailable:
            if attempt == 4:
                raise
        finally:
            driver.close()
    raise AssertionError("unreachable")


async def test_api_sigkill_loses_no_accepted_document(
    settings: WorkerSettings, s3_server: Any, processes: Processes, tmp_path: Path
) -> None:
    """Given an API (2 legacy threads, journal on disk) routing half the documents to a
    Temporal worker process, when 16 legacy and 16 Temporal documents are accepted and the
    API is killed with SIGKILL right after the last 202, then a restarted API resumes the
    unfinished ones, every document is written to the graph exactly once, and the restarted
    API answers `completed` for all 32."""
    ids = documents(settings, s3_server)
    everything = ids["legacy"] + ids["temporal"]
    journal = tmp_path / "journal.sqlite3"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_env = environment(
        settings,
        API_HOST="127.0.0.1",
        API_PORT=str(port),
        API_JOURNAL_PATH=str(journal),
        API_LEGACY_THREADS="2",
        TEMPORAL_ROLLOUT_PERCENTAGE=str(PERCENTAGE),
    )
    processes.start(WORKER, environment(settings))
    async with aiohttp.ClientSession() as http:
        api = processes.start(API, api_env)
        wait_ready(url, api)

        # when every document is accepted and the API dies at once
        async def post(document_id: str) -> tuple[int, Any]:
            body = {"document_id": document_id, "source": SOURCE}
            async with http.post(f"{url}/v1/documents", json=body) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(*(post(d) for d in everything))
        api.send_signal(signal.SIGKILL)
        api.wait(10)
        assert [status for status, _ in answers] == [202] * len(everything), answers
        assert [a["path"] for _, a in answers] == ["legacy"] * PER_PATH + ["temporal"] * PER_PATH
        left = unfinished_in_journal(journal)
        assert left.get("legacy", 0) > 0, f"no legacy document was in flight at the kill: {left}"

        # then a restarted API finishes them and answers for all
        restarted = processes.start(API, api_env)
        wait_ready(url, restarted)
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while True:
            answers_by_id = await statuses(url, everything, http)
            finished = {
                d
                for d, (s, b) in answers_by_id.items()
                if s == 200 and b["status"] in ("completed", "failed")
            }
            if finished == set(everything) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        failed = {d: b for d, (_, b) in answers_by_id.items() if b.get("status") != "completed"}
        assert not failed, f"{failed}\n{processes.log(API)}"
        async with http.get(url + "/metrics") as response:
            metrics = await response.text()
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0

    assert documents_in_graph(settings) == {d: 1 for d in everything}
    resumed = f'ingestion_resumed_documents_total{{path="legacy"}} {float(left["legacy"])}'
    assert resumed in metrics, metrics

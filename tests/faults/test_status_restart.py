"""Fault suite, status part (issue 17): the API restarts while clients wait on documents.

Everything is real and out of this process: the `ingestion-api` process and a Temporal
worker process (`python -m ...`, configured by the environment), the `ingestion` CLI as a
user runs it (`ingestion status --wait`), the session's Temporal dev server, moto S3 and
FalkorDB. One scenario, three API processes on the same port and journal:

1. the first API runs its legacy document against a graph database that is down (its
   NEO4J_URI names a closed port), so the document keeps retrying its graph write; the
   Temporal worker delays every graph write by a few seconds (FAULT_DELAY_SECONDS);
2. SIGKILL: the waiting CLIs lose their connections, keep asking, and the second API
   (graph reachable) resumes the legacy document from its journal: both CLIs print
   `completed` and exit 0;
3. SIGTERM of the second API while a client waits on a Temporal document: the wait is
   answered at once with the current status (not held until the drain ends), and a CLI
   waiting on the same document finishes against the third API.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from api_processes import API, WORKER, Processes, environment, wait_ready
from ingestion_api.routing import should_use_temporal
from ingestion_sandbox.servers.services import free_port
from ingestion_worker.settings import WorkerSettings

pytestmark = pytest.mark.asyncio

PERCENTAGE = 50
WRITE_DELAY_SECONDS = 4.0
CLI_TIMEOUT_SECONDS = 120.0
FALKORDB_MAX_MESSAGE = 4000  # FalkorDB's Bolt port crashes on requests over 4 KiB


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
    for bucket in (f"wait-{name}", f"wait-{name}-artifacts"):
        s3.create_bucket(Bucket=bucket)
    return WorkerSettings(
        temporal_address=temporal_server.address,
        task_queue=f"wait-{name}",
        s3_endpoint_url=s3_server.endpoint_url,
        documents_bucket=f"wait-{name}",
        artifact_bucket=f"wait-{name}-artifacts",
        neo4j_uri=falkordb.bolt_uri,
        neo4j_database=f"g{name}",
        neo4j_max_message_bytes=FALKORDB_MAX_MESSAGE,
        embedding_dimensions=64,
        metrics_port=0,
    )


def one_per_path(prefix: str) -> dict[str, str]:
    """A document id per path at PERCENTAGE."""
    ids: dict[str, str] = {}
    n = 0
    while len(ids) < 2:
        document_id = f"{prefix}-{n}"
        path = "temporal" if should_use_temporal(document_id, PERCENTAGE) else "legacy"
        ids.setdefault(path, document_id)
        n += 1
    return ids


class Cli:
    """`ingestion status SOURCE ID --wait` running as its own process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen = ""

    @classmethod
    async def wait_on(cls, url: str, source: str, document_id: str) -> Cli:
        argv = [sys.executable, "-m", "ingestion_api.cli", "--api", url, "status", source]
        argv += [document_id, "--wait", "--interval", "0.2", "--timeout", "90"]
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def printed(self, text: str) -> None:
        """Until the CLI has printed a line starting with `text` (it is waiting by then)."""
        assert self.process.stdout is not None
        while not any(line.startswith(text) for line in self.seen.splitlines()):
            line = await asyncio.wait_for(self.process.stdout.readline(), CLI_TIMEOUT_SECONDS)
            assert line, f"the CLI ended after printing {self.seen!r}"
            self.seen += line.decode()

    async def result(self) -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(self.process.communicate(), CLI_TIMEOUT_SECONDS)
        assert self.process.returncode is not None
        return self.process.returncode, self.seen + out.decode(), err.decode()


async def status_of(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def until(http: aiohttp.ClientSession, url: str, check: Any, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not check(body := await status_of(http, url)):
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)


async def test_waiting_clients_outlive_api_restarts(
    settings: WorkerSettings, s3_server: Any, processes: Processes, tmp_path: Path
) -> None:
    """Given CLIs waiting on a legacy document stuck retrying its graph write and on a
    Temporal document slowed at its write, when the API is killed and restarted (graph now
    reachable), then both CLIs print `completed` and exit 0; and when an API is stopped with
    SIGTERM while a client waits, that wait is answered at once with the current status and
    a CLI waiting on the same document still finishes against the next API."""
    source = f"wait-{uuid.uuid4().hex[:6]}"
    first, later = one_per_path("first"), one_per_path("later")
    s3 = boto3.client("s3", **s3_server.client_kwargs())
    for document_id in [*first.values(), *later.values()]:
        key = f"{settings.documents_prefix}/{source}/{document_id}"
        body = b"Invoice INV-1 for order ORD-12345. " * 100
        s3.put_object(
            Bucket=settings.documents_bucket, Key=key, Body=body, ContentType="text/plain"
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_env = environment(
        settings,
        API_HOST="127.0.0.1",
        API_PORT=str(port),
        API_JOURNAL_PATH=str(tmp_path / "journal.sqlite3"),
        TEMPORAL_ROLLOUT_PERCENTAGE=str(PERCENTAGE),
    )
    graph_down = api_env | {
        "NEO4J_URI": f"bolt://127.0.0.1:{free_port()}",
        "NEO4J_CONNECTION_TIMEOUT_SECONDS": "0.5",
    }
    processes.start(WORKER, environment(settings, FAULT_DELAY_SECONDS=str(WRITE_DELAY_SECONDS)))
    async with aiohttp.ClientSession() as http:
        api = processes.start(API, graph_down)
        wait_ready(url, api)
        for document_id in first.values():
            body = {"document_id": document_id, "source": source}
            async with http.post(f"{url}/v1/documents", json=body) as response:
                assert response.status == 202, await response.text()
        legacy_url = f"{url}/v1/documents/{source}/{first['legacy']}"
        await until(http, legacy_url, lambda b: b["status"].startswith("retrying: Graph"))
        clis = [await Cli.wait_on(url, source, first[path]) for path in ("legacy", "temporal")]
        await clis[0].printed("status: retrying: GraphUnavailableError")
        await clis[1].printed("status: ")

        # when the API dies with both documents unfinished, and comes back with a graph
        api.send_signal(signal.SIGKILL)
        api.wait(10)
        restarted = processes.start(API, api_env)
        wait_ready(url, restarted)
        results = [await cli.result() for cli in clis]
        for code, out, err in results:
            assert code == 0, f"{out}\n{err}\n{processes.log(API)}"
            assert "status: completed" in out, out

        # when an API is stopped while a client waits on a slowed Temporal document
        temporal = later["temporal"]
        async with http.post(
            f"{url}/v1/documents", json={"document_id": temporal, "source": source}
        ) as response:
            assert response.status == 202
        cli = await Cli.wait_on(url, source, temporal)
        await cli.printed("status: ")
        waiting = asyncio.create_task(
            status_of(http, f"{url}/v1/documents/{source}/{temporal}?wait=60s")
        )
        await asyncio.sleep(1.0)
        restarted.send_signal(signal.SIGTERM)
        answer = await asyncio.wait_for(waiting, 30)
        # answered before the drain let the document finish (or it would say completed)
        assert answer["status"] not in ("completed", "failed"), answer
        assert restarted.wait(60) == 0
        third = processes.start(API, api_env)
        wait_ready(url, third)
        code, out, err = await cli.result()
        assert code == 0 and "status: completed" in out, f"{out}\n{err}"

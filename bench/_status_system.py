"""The status benchmark's system under test: the servers, the worker process and the real
`ingestion-api` process, and a handle (`System`) to make documents, post them, read their
status and count what the reads cost Temporal (bench/status_bench.py measures with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import aiohttp
import boto3
from _stats import settings_for
from ingestion_api.routing import should_use_temporal
from ingestion_sandbox.servers.services import (
    FalkorDBServer,
    S3ProcessServer,
    TemporalDevServer,
    free_port,
)
from ingestion_worker.settings import WorkerSettings
from temporalio.client import Client

HERE = Path(__file__).resolve().parent
SOURCE = "bench"
PERCENTAGE = 50
BODY = (b"Invoice INV-2024-0001 for order ORD-12345 sent to jane@example.com. " * 30)[:2000]
FINAL = ("completed", "failed")


@dataclass
class System:
    """The running servers and processes."""

    settings: WorkerSettings
    temporal: Client
    url: str
    api_pid: int
    graph_pid: int
    #: Every server and process of the system, for CPU per document.
    pids: dict[str, int]
    journal: Path
    http: aiohttp.ClientSession
    made: dict[str, int] = field(default_factory=dict)

    def ids(self, path: str, n: int, prefix: str) -> list[str]:
        """`n` new document ids that take `path` at PERCENTAGE, uploaded to S3."""
        found: list[str] = []
        while len(found) < n:
            count = self.made[prefix] = self.made.get(prefix, 0) + 1
            document_id = f"{prefix}-{count}"
            temporal = should_use_temporal(document_id, PERCENTAGE)
            if (path == "temporal") == temporal:
                found.append(document_id)
        s3 = boto3.client("s3", endpoint_url=self.settings.s3_endpoint_url, region_name="us-east-1")
        for document_id in found:
            key = f"{self.settings.documents_prefix}/{SOURCE}/{document_id}"
            s3.put_object(
                Bucket=self.settings.documents_bucket, Key=key, Body=BODY, ContentType="text/plain"
            )
        return found

    def status_url(self, document_id: str, wait: str = "") -> str:
        return f"{self.url}/v1/documents/{SOURCE}/{document_id}" + (f"?wait={wait}" if wait else "")

    async def post(self, document_id: str) -> None:
        body = {"document_id": document_id, "source": SOURCE}
        async with self.http.post(f"{self.url}/v1/documents", json=body) as response:
            if response.status != 202:
                raise RuntimeError(f"{document_id}: {response.status} {await response.text()}")

    async def status(self, document_id: str, wait: str = "") -> dict[str, Any]:
        async with self.http.get(self.status_url(document_id, wait)) as response:
            body: dict[str, Any] = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{document_id}: {response.status} {body}")
            return body

    async def ingest(
        self, document_id: str, accepted: Callable[[str], None] = lambda _: None
    ) -> float:
        """Seconds from POST to the finished status (one ?wait= long-poll); `accepted`
        hears the id once the 202 is in."""
        started = time.perf_counter()
        await self.post(document_id)
        accepted(document_id)
        while (view := await self.status(document_id, "60s"))["status"] not in FINAL:
            pass
        if view["status"] != "completed":
            raise RuntimeError(f"{document_id} failed: {view}")
        return time.perf_counter() - started

    async def calls(self, call: str) -> float:
        """The API's ingestion_temporal_status_calls_total{call=...}."""
        async with self.http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        prefix = f'ingestion_temporal_status_calls_total{{call="{call}"}} '
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0


def environment(settings: WorkerSettings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            env[f.metadata["env"]] = str(value).lower() if isinstance(value, bool) else str(value)
    return env | extra


def client_process(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(HERE / "_status_clients.py"), *args]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@contextlib.asynccontextmanager
async def running(tmp: Path) -> AsyncIterator[System]:
    """The servers, the worker process and the API process (at PERCENTAGE), ready."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with contextlib.ExitStack() as stack:
        temporal = stack.enter_context(TemporalDevServer())
        s3 = stack.enter_context(S3ProcessServer())
        graph = stack.enter_context(FalkorDBServer())
        name = uuid.uuid4().hex[:6]
        settings = settings_for(
            temporal,
            s3,
            graph,
            documents_bucket=f"status-{name}",
            artifact_bucket=f"status-{name}-artifacts",
        )
        client = boto3.client("s3", **s3.client_kwargs())
        for bucket in (settings.documents_bucket, settings.artifact_bucket):
            client.create_bucket(Bucket=bucket)
        port, journal = free_port(), tmp / "journal.sqlite3"
        api_env = environment(
            settings,
            API_HOST="127.0.0.1",
            API_PORT=str(port),
            API_JOURNAL_PATH=str(journal),
            TEMPORAL_ROLLOUT_PERCENTAGE=str(PERCENTAGE),
        )
        processes = start_processes(tmp, environment(settings), api_env)
        stack.callback(lambda: [p.kill() for p in processes])
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            await ready(http, url, processes[1])
            yield System(
                settings=settings,
                temporal=await Client.connect(temporal.address),
                url=url,
                api_pid=processes[1].pid,
                graph_pid=graph.pid,
                pids={
                    "worker": processes[0].pid,
                    "api": processes[1].pid,
                    "temporal": temporal.pid,
                    "graph": graph.pid,
                    "s3": s3.pid,
                },
                journal=journal,
                http=http,
            )


def start_processes(tmp: Path, worker_env: dict[str, str], api_env: dict[str, str]) -> list[Any]:
    """The worker and the API process, each logging to a file in `tmp`."""
    started = []
    for module, env in (("ingestion_worker.worker", worker_env), ("ingestion_api.main", api_env)):
        log = (tmp / f"{module}.log").open("wb")
        command = [sys.executable, "-m", module]
        started.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    return started


async def ready(http: aiohttp.ClientSession, url: str, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"the API process exited with {api.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url + "/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError("the API was not ready within 60 s")

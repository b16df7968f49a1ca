"""Fixtures for the ingestion API: real HTTP servers (one per "replica") in this process,
each with its own routing source, all sharing the test's worker, bucket and graph."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from ingestion_api.app import make_app
from ingestion_api.main import open_journal
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import RoutingSource, StaticRoutingSource
from ingestion_api.service import IngestionService
from ingestion_api.settings import ApiSettings
from ingestion_api.status_reader import ReadSettings
from ingestion_sandbox.servers.services import free_port


@dataclasses.dataclass
class ApiReplica:
    url: str
    service: IngestionService
    http: aiohttp.ClientSession

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.http.post(self.url + path, json=body, **kwargs) as response:
            return response.status, await response.json(), response.headers

    async def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are (headers no client library would send); one answer back."""
        host, port = self.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
        writer.close()
        return int(lines[0].split()[1]), headers, body

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def ingest(self, document_id: str, key: str, source: str = "crm") -> dict[str, Any]:
        status, body, _ = await self.post(
            "/v1/documents", {"document_id": document_id, "source": source, "key": key}
        )
        assert status == 202, body
        return body


StartApi = Callable[..., Awaitable[ApiReplica]]


@pytest.fixture
async def start_api(worker: Any, tmp_path: Path) -> AsyncIterator[StartApi]:
    """Start API replicas: start_api(routing=..., **ApiSettings overrides), each with its own
    journal file unless `journal_path` names one (a "restarted" replica reuses it)."""
    runners: list[tuple[web.AppRunner, IngestionService, aiohttp.ClientSession]] = []

    async def start(
        routing: RoutingSource | None = None,
        pipeline: Any = None,
        temporal: Any = None,
        **overrides: Any,
    ) -> ApiReplica:
        routing = routing or StaticRoutingSource(RoutingConfig(percentage=0))
        await routing.start()
        overrides.setdefault("journal_path", str(tmp_path / f"journal-{len(runners)}.sqlite3"))
        settings = dataclasses.replace(ApiSettings(port=free_port(), host="127.0.0.1"), **overrides)
        service = IngestionService(
            routing=routing,
            temporal=temporal or worker.client,
            task_queue=worker.settings.task_queue,
            pipeline=pipeline or worker.pipeline,
            journal=open_journal(settings),
            max_in_flight=settings.max_in_flight,
            legacy_threads=settings.legacy_threads,
            temporal_timeout=settings.temporal_start_timeout_seconds,
            reads=ReadSettings.of(settings),
        )
        await service.resume()
        runner = web.AppRunner(make_app(service, settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        http = aiohttp.ClientSession()
        runners.append((runner, service, http))
        return ApiReplica(f"http://127.0.0.1:{settings.port}", service, http)

    yield start
    for runner, service, http in runners:
        await http.close()
        await runner.shutdown()
        await service.drain()
        await runner.cleanup()
        await service.routing.stop()
        service.close()

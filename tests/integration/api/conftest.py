"""Fixtures for the ingestion API: real HTTP servers (one per "replica") in this process,
each with its own routing source, all sharing the test's worker, bucket and graph."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from ingestion_api.app import make_app
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import RoutingSource, StaticRoutingSource
from ingestion_api.service import IngestionService
from ingestion_api.settings import ApiSettings
from ingestion_sandbox.servers.services import free_port


@dataclasses.dataclass
class ApiReplica:
    url: str
    service: IngestionService
    http: aiohttp.ClientSession

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.http.post(self.url + path, json=body, **kwargs) as response:
            return response.status, await response.json(), response.headers

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
async def start_api(worker: Any) -> AsyncIterator[StartApi]:
    """Start API replicas: start_api(routing=..., **ApiSettings overrides)."""
    runners: list[tuple[web.AppRunner, IngestionService, aiohttp.ClientSession]] = []

    async def start(
        routing: RoutingSource | None = None, pipeline: Any = None, **overrides: Any
    ) -> ApiReplica:
        routing = routing or StaticRoutingSource(RoutingConfig(percentage=0))
        await routing.start()
        settings = dataclasses.replace(ApiSettings(port=free_port(), host="127.0.0.1"), **overrides)
        service = IngestionService(
            routing=routing,
            temporal=worker.client,
            task_queue=worker.settings.task_queue,
            pipeline=pipeline or worker.pipeline,
            max_in_flight=settings.max_in_flight,
            legacy_threads=settings.legacy_threads,
        )
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

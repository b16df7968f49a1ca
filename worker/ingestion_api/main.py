"""The `ingestion-api` process: routing source, Temporal client, legacy pipeline, HTTP.

At start-up it resumes every document its journal holds without a result (a previous
process accepted it, then died). On SIGTERM it stops accepting, then waits for every
accepted document to finish (legacy runs live in this process) before exiting.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from ingestion_contract.process import exit_now
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.settings import WorkerSettings, get_settings
from temporalio.client import Client

from ingestion_api.app import make_app
from ingestion_api.journal import Journal
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import (
    ConfigMapRoutingSource,
    RoutingSource,
    StaticRoutingSource,
)
from ingestion_api.service import IngestionService
from ingestion_api.settings import ApiSettings, get_api_settings
from ingestion_api.status_reader import ReadSettings

log = logging.getLogger("ingestion_api")


def make_routing_source(settings: ApiSettings) -> RoutingSource:
    """The ConfigMap when one is named, else the environment's fixed percentage."""
    fallback = RoutingConfig(percentage=settings.fallback_percentage, parallel=settings.parallel)
    if not settings.routing_configmap:
        return StaticRoutingSource(fallback)
    return ConfigMapRoutingSource(
        namespace=settings.routing_namespace,
        name=settings.routing_configmap,
        key=settings.routing_key,
        kubeconfig=settings.kubeconfig,
        fallback=fallback,
    )


async def build_service(api: ApiSettings, worker: WorkerSettings) -> IngestionService:
    routing = make_routing_source(api)
    await routing.start()
    client = await Client.connect(
        worker.temporal_address, namespace=worker.temporal_namespace, lazy=True
    )
    return IngestionService(
        routing=routing,
        temporal=client,
        task_queue=worker.task_queue,
        pipeline=build_pipeline(worker),
        journal=open_journal(api),
        max_in_flight=api.max_in_flight,
        legacy_threads=api.legacy_threads,
        temporal_timeout=api.temporal_start_timeout_seconds,
        reads=ReadSettings.of(api),
    )


def open_journal(api: ApiSettings) -> Journal:
    """The acceptance journal; without API_JOURNAL_PATH it lives in memory (and says so)."""
    journal = Journal(
        api.journal_path,
        sync=api.journal_sync,
        max_records=api.journal_max_records,
        retention_seconds=api.journal_retention_seconds,
    )
    if not journal.durable:
        log.warning(
            "API_JOURNAL_PATH is unset: accepted legacy-path documents and every status are "
            "kept in memory only and are lost if this process dies"
        )
    return journal


async def serve(api: ApiSettings, worker: WorkerSettings) -> None:
    service = await build_service(api, worker)
    await service.resume()  # before new requests: what a previous process accepted comes first
    runner = web.AppRunner(make_app(service, api), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, api.host, api.port).start()
    log.info("ingestion API on %s:%s, routing %s", api.host, api.port, service.routing.describe())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping: %d documents in flight", service.in_flight)
    await runner.shutdown()  # no new requests
    await service.drain()  # nothing accepted is dropped
    await runner.cleanup()
    await service.routing.stop()
    service.close()
    service.pipeline.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(get_api_settings(), get_settings()))
    exit_now(0)


if __name__ == "__main__":
    main()

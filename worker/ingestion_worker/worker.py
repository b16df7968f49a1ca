"""The Temporal worker process: registers the workflow and activities, serves /metrics,
refreshes the task-queue backlog gauge, and shuts down gracefully on SIGTERM
(in-flight activities get GRACEFUL_SHUTDOWN_SECONDS to finish, then are handed back).
With a fault setting (FAULT_FILE, FAULT_FAILURE_RATE, FAULT_DELAY_SECONDS) it also
registers the fault interceptor; without one, activities run untouched.

The workflow runs outside Temporal's sandbox unless WORKFLOW_SANDBOX is set: the sandbox
re-imports the workflow's modules for every run, which about doubles the worker's CPU
per workflow task, and its job (catching non-deterministic code) is done in CI by the
replay test, which replays recorded histories of real runs against the current code
(tests/integration/replay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from ingestion_contract.process import exit_now
from prometheus_client import start_http_server
from temporalio.client import Client
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from ingestion_worker.activities import IngestionActivities
from ingestion_worker.backlog import task_queue_backlog
from ingestion_worker.faults import FaultInterceptor, fault_source
from ingestion_worker.metrics import TASK_QUEUE_BACKLOG
from ingestion_worker.pipeline import Pipeline, build_pipeline
from ingestion_worker.settings import WorkerSettings, get_settings
from ingestion_worker.workflows import DocumentIngestionWorkflow

log = logging.getLogger("ingestion_worker")


def build_worker(
    client: Client,
    settings: WorkerSettings,
    pipeline: Pipeline,
    executor: ThreadPoolExecutor,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """A Worker for the ingestion task queue, activities bound to `pipeline`'s clients
    (`interceptors`: for tools that observe it, e.g. bench/workflow_profile.py)."""
    activities = IngestionActivities(pipeline)
    faults = fault_source(settings)
    chain = [*interceptors, *([] if faults is None else [FaultInterceptor(faults)])]
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[DocumentIngestionWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_local_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
        interceptors=chain,
        workflow_runner=workflow_runner(settings),
    )


def workflow_runner(
    settings: WorkerSettings,
) -> SandboxedWorkflowRunner | UnsandboxedWorkflowRunner:
    """The sandbox only when asked for (WORKFLOW_SANDBOX); the replay test guards the rest."""
    return SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()


async def refresh_backlog(client: Client, task_queue: str, every: float) -> None:
    """Keep temporal_task_queue_backlog fresh; a failed describe keeps the last value."""
    gauge = TASK_QUEUE_BACKLOG.labels(task_queue)
    while True:
        try:
            gauge.set(await task_queue_backlog(client, task_queue))
        except Exception as exc:  # the gauge is advisory; never kill the worker for it
            log.warning("could not describe task queue %s: %s", task_queue, exc)
        await asyncio.sleep(every)


async def run(settings: WorkerSettings, interceptors: Sequence[Interceptor] = ()) -> None:
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    pipeline = build_pipeline(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        worker = build_worker(client, settings, pipeline, executor, interceptors)
        refresher = asyncio.create_task(
            refresh_backlog(client, settings.task_queue, settings.backlog_refresh_seconds)
        )
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        async with worker:
            await stop.wait()
            log.info("shutting down: finishing in-flight activities")
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
    # The graph driver is not closed: the process exits next (exit_now), and the OS closing
    # its sockets ends every Bolt session as well as a GOODBYE would, without poisoning
    # FalkorDB's Bolt port (see GraphWriter.close).


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run(get_settings()))
    exit_now(0)


if __name__ == "__main__":
    main()

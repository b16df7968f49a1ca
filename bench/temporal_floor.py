"""What a workflow costs before it does any work, on the rig's Temporal dev server (issue 12).

The pipeline benchmark says the Temporal path is slower than the legacy path; the profile
(bench/workflow_profile.py) says in which segments. This says how much of it is Temporal's
own floor: workflows that do nothing, shaped like DocumentIngestionWorkflow, with the
worker in this process (its fastest case) and a client that waits for the result:

    empty                      start, one workflow task, close, result
    local activity             the same with one no-op local activity (the inline group)
    local activity + activity  the same plus one no-op regular activity (write_graph): a
                               second workflow task and an activity round trip

The variants alternate within each run, on the dev server with README's settings; every
figure is the median of the runs' p50s with [min-max]. Never a test: it prints numbers.

    .venv/bin/python bench/temporal_floor.py [--runs 3] [--workflows 60]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from _stats import percentile, spread
from ingestion_sandbox.servers.services import TemporalDevServer
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class Shape:
    local_activity: bool
    activity: bool


SHAPES = {
    "empty": Shape(local_activity=False, activity=False),
    "local activity": Shape(local_activity=True, activity=False),
    "local activity + activity": Shape(local_activity=True, activity=True),
}


@activity.defn
def no_op(value: str) -> str:
    return value


@workflow.defn
class FloorWorkflow:
    @workflow.run
    async def run(self, shape: Shape) -> str:
        value = "x"
        if shape.local_activity:
            value = await workflow.execute_local_activity(
                no_op, value, start_to_close_timeout=TIMEOUT
            )
        if shape.activity:
            value = await workflow.execute_activity(no_op, value, start_to_close_timeout=TIMEOUT)
        return value


async def one_run(workflows: int) -> dict[str, float]:
    """p50 seconds of each shape, the shapes alternating, on a server of this run's own."""
    with TemporalDevServer() as server, ThreadPoolExecutor(8) as executor:
        client = await Client.connect(server.address)
        queue = f"floor-{uuid.uuid4().hex[:6]}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[FloorWorkflow],
            activities=[no_op],
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            times: dict[str, list[float]] = {name: [] for name in SHAPES}
            for i in range(workflows + 5):  # the first 5 of each warm the caches
                for name, shape in SHAPES.items():
                    started = time.perf_counter()
                    await client.execute_workflow(
                        FloorWorkflow.run, shape, id=f"floor-{uuid.uuid4().hex}", task_queue=queue
                    )
                    if i >= 5:
                        times[name].append(time.perf_counter() - started)
    return {name: percentile(values, 0.5) for name, values in times.items()}


async def main(args: argparse.Namespace) -> None:
    runs = []
    for run in range(args.runs):
        runs.append(await one_run(args.workflows))
        print(f"run {run + 1}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in runs[-1].items()))
    print(f"\nno-op workflows, p50 ms, median of {args.runs} runs [min-max]")
    for name in SHAPES:
        middle, low, high = spread([run[name] * 1e3 for run in runs])
        print(f"{name:<28}{middle:8.1f} [{low:.1f}-{high:.1f}]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=60, help="per shape and run")
    asyncio.run(main(parser.parse_args()))

"""Where a Temporal-path document's time goes, one 10 KB document at a time (issue 12).

The pipeline benchmark says how much slower the Temporal path is; this says why. It runs
documents one at a time through each path on the same servers as bench/pipeline_bench.py
(a worker process of its own, or --colocated), then reads every workflow's history and
splits its wall time into the segments the server recorded:

    start call -> started            the client's StartWorkflowExecution round trip
    started -> task 1 running        dispatch of the first workflow task to the worker
    task 1                           the inline group (download, parse, entities, embed)
                                     as a local activity, inside the first workflow task
    task 1 done -> write running     write_graph scheduled and dispatched (eagerly)
    write_graph                      the graph write, in the worker
    write done -> task 2 running     dispatch of the second workflow task
    task 2 -> closed                 the last workflow task (cleanup decision, result)
    closed -> client has result      the result's long poll returning

next to the same steps' times on the legacy path (the steps' own timings, which both paths
report). With the worker in a process of its own (the default), that process also records
when each activity's code starts and ends on its clock (bench/_timed_worker.py, the same
machine's clock as the server's), which splits the two activities' segments further:

    task 1 running -> inline code starts    the activation, the local activity scheduled
                                            and handed to a thread of the worker
    inline code                             download, parse, entities, embed
    inline code ends -> task 1 done         the result back through the SDK, write_graph
                                            scheduled, the task completed on the server
    task 1 done -> write code starts        the eager activity handed to a thread
    write code                              the graph write
    write code ends -> write done           the completion recorded on the server

Never a test: it prints numbers.

    .venv/bin/python bench/workflow_profile.py [--documents 40] [--colocated]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from _stats import percentile, settings_for
from ingestion_worker.client import start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import IngestDocumentInput, IngestDocumentResult
from ingestion_worker.pipeline import build_pipeline
from pipeline_bench import servers, upload, worker_for
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

WORKER_SEGMENTS = (
    "task 1 running -> inline code starts",
    "inline code",
    "inline code ends -> task 1 done",
    "task 1 done -> write code starts",
    "write code",
    "write code ends -> write done",
)

SEGMENTS = (
    "start call -> started",
    "started -> task 1 running",
    "task 1 (inline group)",
    "task 1 done -> write running",
    "write_graph",
    "write done -> task 2 running",
    "task 2 -> closed",
    "closed -> client has result",
)


def event_times(history: WorkflowHistory) -> dict[str, list[float]]:
    """Epoch seconds of each event type's occurrences, in order."""
    times: dict[str, list[float]] = {}
    for event in history.events:
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        times.setdefault(name, []).append(event.event_time.ToDatetime().timestamp())
    return times


def segments(history: WorkflowHistory, called: float, returned: float) -> dict[str, float]:
    """One workflow's wall time, split as the module docstring says (seconds)."""
    t = event_times(history)
    started = t["WORKFLOW_EXECUTION_STARTED"][0]
    wft_started, wft_done = t["WORKFLOW_TASK_STARTED"], t["WORKFLOW_TASK_COMPLETED"]
    write_started = t["ACTIVITY_TASK_STARTED"][0]
    write_done = t["ACTIVITY_TASK_COMPLETED"][0]
    closed = t["WORKFLOW_EXECUTION_COMPLETED"][0]
    marks = [
        called,
        started,
        wft_started[0],
        wft_done[0],
        write_started,
        write_done,
        wft_started[-1],
        closed,
        returned,
    ]
    return {name: b - a for name, a, b in zip(SEGMENTS, marks[:-1], marks[1:], strict=True)}


def worker_segments(history: WorkflowHistory, ran: dict[str, dict[str, float]]) -> dict[str, float]:
    """The activities' segments split at the worker's own times (`ran`: activity type ->
    {"began", "ended"} for this workflow); none when the worker did not record them."""
    inline, write = ran.get("run_inline_steps"), ran.get("write_graph")
    if inline is None or write is None:
        return {}
    t = event_times(history)
    marks = [
        t["WORKFLOW_TASK_STARTED"][0],
        inline["began"],
        inline["ended"],
        t["WORKFLOW_TASK_COMPLETED"][0],
        write["began"],
        write["ended"],
        t["ACTIVITY_TASK_COMPLETED"][0],
    ]
    pairs = zip(WORKER_SEGMENTS, marks[:-1], marks[1:], strict=True)
    return {name: b - a for name, a, b in pairs}


def activity_times(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """What the timed worker recorded (bench/_timed_worker.py): workflow id -> activity type
    -> its times; empty when the worker recorded nothing (--colocated)."""
    ran: dict[str, dict[str, dict[str, float]]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            ran.setdefault(row["workflow_id"], {})[row["activity"]] = row
    return ran


def step_seconds(result: IngestDocumentResult) -> dict[str, float]:
    return {timing.step: timing.seconds for timing in result.timings}


def median_ms(rows: Sequence[dict[str, float]], name: str) -> str:
    values = [row[name] for row in rows if name in row]
    return f"{statistics.median(values) * 1e3:8.1f}" if values else "       -"


async def profile(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        temporal, s3, graph = stack.enter_context(servers(server_defaults=False))
        settings = settings_for(temporal, s3, graph)
        upload(s3, settings.documents_bucket)
        print("servers up", flush=True)
        client = await Client.connect(temporal.address)
        legacy = build_pipeline(replace(settings, neo4j_database="legacy"))
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="profile-"))
        times = Path(scratch) / "activity-times.jsonl"
        runs = []  # (workflow id, history, called, returned, result), read once the worker is done
        rows, legacy_rows = [], []
        temporal_totals, legacy_totals = [], []
        async with worker_for(settings, client, args.colocated, times):
            for i in range(args.documents + 5):  # the first 5 warm connections and parsers
                key = f"documents/bench/10KB-{i % 40}"
                request = IngestDocumentInput(f"profile-{time.time_ns()}", "bench", key=key)
                called = time.time()
                handle = await start_ingestion(client, request, settings.task_queue)
                result = await handle.result()
                returned = time.time()
                history = await handle.fetch_history()
                began = time.perf_counter()
                legacy_result = await asyncio.to_thread(
                    ingest_legacy, replace(request, document_id=request.document_id + "-l"), legacy
                )
                legacy_total = time.perf_counter() - began
                if i < 5:
                    continue
                runs.append((handle.id, history, called, returned, result))
                legacy_rows.append(step_seconds(legacy_result))
                temporal_totals.append(returned - called)
                legacy_totals.append(legacy_total)
        legacy.close()
        ran = activity_times(times)
        for workflow_id, history, called, returned, result in runs:
            split = worker_segments(history, ran.get(workflow_id, {}))
            rows.append(segments(history, called, returned) | split | step_seconds(result))
    report(rows, legacy_rows, temporal_totals, legacy_totals, args)


def report(
    rows: list[dict[str, float]],
    legacy_rows: list[dict[str, float]],
    temporal_totals: list[float],
    legacy_totals: list[float],
    args: argparse.Namespace,
) -> None:
    where = "in this process (--colocated)" if args.colocated else "in a process of its own"
    print(f"\n{len(rows)} documents of 10 KB, one at a time, worker {where}; medians in ms")
    print(f"{'segment of a Temporal-path document':<34}{'ms':>8}")
    for name in SEGMENTS:
        print(f"{name:<34}{median_ms(rows, name)}")
    if any(WORKER_SEGMENTS[0] in row for row in rows):
        print(f"\n{'split at the worker clock':<40}{'ms':>8}")
        for name in WORKER_SEGMENTS:
            print(f"{name:<40}{median_ms(rows, name)}")
    print(f"\n{'step (its own timing)':<34}{'temporal':>8}{'legacy':>9}")
    for step in ("download", "parse", "extract_entities", "embed", "write_graph"):
        print(f"{step:<34}{median_ms(rows, step)} {median_ms(legacy_rows, step)}")
    for path, totals in (("temporal", temporal_totals), ("legacy", legacy_totals)):
        p50, p99 = percentile(totals, 0.5) * 1e3, percentile(totals, 0.99) * 1e3
        print(f"{path + ' end to end':<34}p50 {p50:.1f}, p99 {p99:.1f}")
    stamp = datetime.now().isoformat(timespec="seconds")
    print(f"(measured {stamp}; segments come from the server's event times)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--colocated", action="store_true", help="worker in this process")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")  # moto takes any credentials
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    asyncio.run(profile(parser.parse_args()))


if __name__ == "__main__":
    main()

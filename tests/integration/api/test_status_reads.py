"""Status reads that cost the workers nothing (issue 17), over real HTTP with real Temporal,
S3 and graph servers: finished documents are read without a query, and agree with what the
workflow reports; reads of an open workflow share one query; both paths answer one shape.

What a read cost is counted by the API's own metric,
`ingestion_temporal_status_calls_total{call}` (query = a worker had to answer)."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from held_pipeline import HeldPipeline
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_worker.client import ingestion_status
from ingestion_worker.graph import GraphWriter
from ingestion_worker.models import IngestDocumentResult, workflow_id_for
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.settings import WorkerSettings
from prometheus_client import REGISTRY
from sample_documents import put_text_documents

pytestmark = pytest.mark.asyncio

STEP_NAMES = ["download", "parse", "extract_entities", "embed", "write_graph"]
STATUS_KEYS = {
    "document_id",
    "source",
    "path",
    "status",
    "step",
    "timings",
    "error_type",
    "error_message",
}


@pytest.fixture
def pipeline(settings: WorkerSettings, shared_graph: GraphWriter) -> Iterator[HeldPipeline]:
    """The worker's and the legacy path's pipeline, with "held-" and "flaky-" documents."""
    built = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    yield HeldPipeline.around(built)
    built.close()


def calls(call: str) -> float:
    """Status calls the API processes of this test process sent to Temporal so far."""
    value = REGISTRY.get_sample_value("ingestion_temporal_status_calls_total", {"call": call})
    return value or 0.0


def routing(percentage: int) -> StaticRoutingSource:
    return StaticRoutingSource(RoutingConfig(percentage=percentage))


async def read_until(api: Any, path: str, done: Any, limit: float = 30.0) -> list[dict[str, Any]]:
    """Read `path` every 50 ms until `done(body)`; every answer seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status, body = await api.get(path)
        assert status == 200, body
        seen.append(body)
        if done(body):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never got there: {seen[-3:]}")


async def test_finished_documents_are_what_the_workflow_reports_and_need_no_worker(
    start_api: Any, s3: Any, bucket: str, worker: Any, tmp_path: Path
) -> None:
    """Given a completed, a failed (its object is missing) and a retried (its first
    download throttled) Temporal-path document, when each is read from the replica that
    accepted it, from that replica restarted on its journal, and from a replica that never
    saw it (Temporal's record), then all three answers are the same, are what the workflow
    itself reports (its result and its own get_status query), and no read queried a worker."""
    run = uuid.uuid4().hex[:6]
    ids = {"completed": f"done-{run}", "failed": f"missing-{run}", "retried": f"flaky-{run}"}
    put_text_documents(s3, bucket, [ids["completed"], ids["retried"]])
    journal = str(tmp_path / "journal.sqlite3")
    first = await start_api(routing(100), journal_path=journal)
    for document_id in ids.values():
        await first.ingest(document_id, f"documents/crm/{document_id}")
    await first.service.drain()

    queries = calls("query")
    answers = {d: await first.get(f"/v1/documents/crm/{d}") for d in ids.values()}
    restarted = await start_api(routing(100), journal_path=journal)
    stranger = await start_api(routing(100))  # a journal of its own: Temporal answers
    for document_id, answer in answers.items():
        assert await restarted.get(f"/v1/documents/crm/{document_id}") == answer
        assert await stranger.get(f"/v1/documents/crm/{document_id}") == answer
    assert calls("query") == queries, "a finished document's read reached a worker"

    for kind, document_id in ids.items():
        status, body = answers[document_id]
        assert status == 200 and set(body) == STATUS_KEYS and body["path"] == "temporal", body
        handle = worker.client.get_workflow_handle(
            workflow_id_for("crm", document_id), result_type=IngestDocumentResult
        )
        result = await handle.result()
        own = await ingestion_status(worker.client, "crm", document_id)
        assert body["status"] == result.status.value == own.status.value, kind
        assert (body["error_type"], body["error_message"]) == (own.error_type, own.error_message)
        steps = [(t.step, round(t.seconds, 6)) for t in own.timings if t.step in STEP_NAMES]
        assert [(t["step"], t["seconds"]) for t in body["timings"]] == steps, kind
    assert answers[ids["completed"]][1]["status"] == "completed"
    assert [t["step"] for t in answers[ids["retried"]][1]["timings"]] == STEP_NAMES
    assert answers[ids["failed"]][1]["error_type"] == "DocumentNotFoundError"


async def test_both_paths_answer_one_shape_and_show_a_retry_while_it_waits(
    start_api: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Given a document whose first download is throttled, on each path, when its status is
    read until it completes, then a read saw "retrying: TransientStorageError: ..." with the
    download step, the final answer has the same fields on both paths with every step timed,
    and the legacy answer is the same after a restart."""
    run = uuid.uuid4().hex[:6]
    journal = str(tmp_path / "journal.sqlite3")
    finals = {}
    for percentage, path in ((0, "legacy"), (100, "temporal")):
        document_id = f"flaky-{path}-{run}"
        put_text_documents(s3, bucket, [document_id])
        api = await start_api(routing(percentage), journal_path=journal)
        await api.ingest(document_id, f"documents/crm/{document_id}")
        seen = await read_until(
            api, f"/v1/documents/crm/{document_id}", lambda b: b["status"] == "completed"
        )
        retrying = [b for b in seen if b["status"].startswith("retrying: TransientStorageError")]
        assert retrying, [b["status"] for b in seen]
        assert {b["step"] for b in retrying} == {"download"} and retrying[0]["path"] == path
        finals[path] = seen[-1]
        await api.service.drain()
    legacy, temporal = finals["legacy"], finals["temporal"]
    assert set(legacy) == set(temporal) == STATUS_KEYS
    assert [t["step"] for t in legacy["timings"]] == [t["step"] for t in temporal["timings"]]
    assert [t["step"] for t in legacy["timings"]] == STEP_NAMES
    restarted = await start_api(routing(0), journal_path=journal)
    document_id = legacy["document_id"]
    assert await restarted.get(f"/v1/documents/crm/{document_id}") == (200, legacy)


async def test_concurrent_reads_of_an_open_workflow_share_one_query(
    start_api: Any, s3: Any, bucket: str, pipeline: HeldPipeline
) -> None:
    """Given a Temporal-path document held at its graph write, when 50 clients read it at
    once from the replica following it, and 50 from a replica that never saw it, then each
    replica asked the workflow about once (one query per reuse time), and the second one
    described it once; the answers say write_graph is the step in progress."""
    document_id = f"held-{uuid.uuid4().hex[:6]}"
    put_text_documents(s3, bucket, [document_id])
    api = await start_api(routing(100))
    stranger = await start_api(routing(100), status_reuse_seconds=5.0)
    await api.ingest(document_id, f"documents/crm/{document_id}")
    path = f"/v1/documents/crm/{document_id}"
    try:
        await read_until(api, path, lambda b: b["step"] == "write_graph")
        await asyncio.sleep(api.service.reader.settings.reuse_seconds)

        queries, started = calls("query"), time.monotonic()
        answers = await asyncio.gather(*(api.get(path) for _ in range(50)))
        reuse = api.service.reader.settings.reuse_seconds
        bound = 1 + math.ceil((time.monotonic() - started) / reuse)
        assert 1 <= calls("query") - queries <= bound
        assert {(s, b["status"], b["step"]) for s, b in answers} == {
            (200, "embeddings_generated", "write_graph")
        }

        queries, describes = calls("query"), calls("describe")
        answers = await asyncio.gather(*(stranger.get(path) for _ in range(50)))
        assert (calls("query") - queries, calls("describe") - describes) == (1, 1)
        assert {b["step"] for _, b in answers} == {"write_graph"}
    finally:
        pipeline.release(document_id)
    await api.service.drain()


async def test_polling_many_open_documents_stays_within_the_query_budget(
    start_api: Any, s3: Any, bucket: str, pipeline: HeldPipeline
) -> None:
    """Given 10 Temporal-path documents held at their graph write and a replica allowed 10
    queries a second, when clients read every one of them every 50 ms for 2 s (400 reads,
    about 100 queries at one per document per reuse time), then at most a second's burst
    (10) plus 10 a second reached the workers, and every read answered its status."""
    run = uuid.uuid4().hex[:6]
    ids = [f"held-{run}-{i}" for i in range(10)]
    put_text_documents(s3, bucket, ids)
    api = await start_api(routing(100), status_queries_per_second=10.0)
    for document_id in ids:
        await api.ingest(document_id, f"documents/crm/{document_id}")
    try:
        for document_id in ids:
            await read_until(api, f"/v1/documents/crm/{document_id}", lambda b: b["step"])
        await asyncio.sleep(1.0)  # the budget refills

        queries, started = calls("query"), time.monotonic()
        answers: list[tuple[int, Any]] = []
        while time.monotonic() < started + 2.0:
            answers += await asyncio.gather(*(api.get(f"/v1/documents/crm/{d}") for d in ids))
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started  # more than 2 s on a loaded machine
        assert calls("query") - queries <= 10 + math.ceil(10 * elapsed)
        assert {status for status, _ in answers} == {200}
        assert {b["step"] for _, b in answers} <= {"download", "write_graph"}
    finally:
        for document_id in ids:
            pipeline.release(document_id)
    await api.service.drain()

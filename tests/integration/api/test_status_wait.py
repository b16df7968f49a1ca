"""Wait instead of poll (issue 17): `GET /v1/documents/{source}/{id}?wait=` answers when the
document finishes, on both paths, without a query per client per tick; batch status reads
many documents in one call. Real HTTP, real Temporal, S3 and graph servers.

The API restarting during a wait, with real processes, is tests/faults/test_status_restart.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from held_pipeline import HeldPipeline
from ingestion_api.routing import RoutingConfig, should_use_temporal
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_worker.graph import GraphWriter
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.settings import WorkerSettings
from prometheus_client import REGISTRY
from sample_documents import put_text_documents

pytestmark = pytest.mark.asyncio

WAIT = 30.0  # every wait here that must end early would otherwise last this long


@pytest.fixture
def pipeline(settings: WorkerSettings, shared_graph: GraphWriter) -> Iterator[HeldPipeline]:
    """The worker's and the legacy path's pipeline, with "held-" documents."""
    built = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    yield HeldPipeline.around(built)
    built.close()


def calls(call: str) -> float:
    value = REGISTRY.get_sample_value("ingestion_temporal_status_calls_total", {"call": call})
    return value or 0.0


def routing(percentage: int) -> StaticRoutingSource:
    return StaticRoutingSource(RoutingConfig(percentage=percentage))


async def timed_get(api: Any, path: str) -> tuple[float, int, Any]:
    started = time.monotonic()
    status, body = await api.get(path)
    return time.monotonic() - started, status, body


async def until_step(api: Any, path: str, step: str) -> None:
    deadline = time.monotonic() + WAIT
    while (await api.get(path))[1].get("step") != step:
        assert time.monotonic() < deadline, f"{path} never reached {step}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("percentage", "path"), [(0, "legacy"), (100, "temporal")])
async def test_waits_end_when_the_document_finishes_and_cost_no_query_per_tick(
    start_api: Any, s3: Any, bucket: str, pipeline: HeldPipeline, percentage: int, path: str
) -> None:
    """Given a document held at its graph write and 10 clients waiting on it (?wait=30s)
    on the replica that runs it, plus (Temporal path) 10 on a replica that never saw it,
    when it is released, then every wait answers `completed` long before 30 s, the
    stranger's waiters shared one long-poll, and no wait queried the workflow."""
    document_id = f"held-{path}-{uuid.uuid4().hex[:6]}"
    put_text_documents(s3, bucket, [document_id])
    api = await start_api(routing(percentage))
    replicas = [api] + ([await start_api(routing(100))] if path == "temporal" else [])
    await api.ingest(document_id, f"documents/crm/{document_id}")
    url = f"/v1/documents/crm/{document_id}"
    await until_step(api, url, "write_graph")
    before = {call: calls(call) for call in ("query", "long_poll")}

    waits = [
        asyncio.create_task(timed_get(replica, f"{url}?wait={WAIT:g}s"))
        for replica in replicas
        for _ in range(10)
    ]
    await asyncio.sleep(1.0)  # every waiter is waiting
    assert not any(w.done() for w in waits)
    pipeline.release(document_id)
    answers = await asyncio.gather(*waits)

    assert {(status, body["status"], body["path"]) for _, status, body in answers} == {
        (200, "completed", path)
    }
    assert max(elapsed for elapsed, _, _ in answers) < WAIT
    queries = calls("query") - before["query"]
    assert queries == 0, f"{queries} workflow queries for {len(waits)} waiting clients"
    assert calls("long_poll") - before["long_poll"] == len(replicas) - 1


async def test_a_wait_that_ends_first_answers_the_status_then(
    start_api: Any, s3: Any, bucket: str, pipeline: HeldPipeline
) -> None:
    """Given a legacy document held at its graph write, when a client waits 1 s, then the
    answer comes after the wait with the status it has then (not finished, in write_graph)."""
    document_id = f"held-timeout-{uuid.uuid4().hex[:6]}"
    put_text_documents(s3, bucket, [document_id])
    api = await start_api(routing(0))
    await api.ingest(document_id, f"documents/crm/{document_id}")
    url = f"/v1/documents/crm/{document_id}"
    try:
        await until_step(api, url, "write_graph")
        elapsed, status, body = await timed_get(api, f"{url}?wait=1s")
        expected = (200, "embeddings_generated", "write_graph")
        assert (status, body["status"], body["step"]) == expected
        assert elapsed >= 1.0
    finally:
        pipeline.release(document_id)
    await api.service.drain()


@pytest.mark.parametrize("percentage", [0, 100])
async def test_a_wait_on_a_failing_document_answers_its_failure(
    start_api: Any, percentage: int
) -> None:
    """Given a document whose object does not exist, when a client waits on it right after
    posting it, then the wait answers `failed` with the error type and message."""
    document_id = f"missing-{uuid.uuid4().hex[:6]}"
    api = await start_api(routing(percentage))
    await api.ingest(document_id, f"documents/crm/{document_id}")
    elapsed, status, body = await timed_get(api, f"/v1/documents/crm/{document_id}?wait=30s")
    assert (status, body["status"], body["error_type"]) == (200, "failed", "DocumentNotFoundError")
    assert "not found" in body["error_message"]
    assert elapsed < WAIT


async def test_a_wait_on_an_unknown_document_is_a_404_at_once(start_api: Any) -> None:
    api = await start_api(routing(100))
    elapsed, status, body = await timed_get(api, "/v1/documents/crm/never-posted?wait=30s")
    assert (status, body["error"]) == (404, "not_found")
    assert elapsed < WAIT


@pytest.mark.parametrize("wait", ["soon", "-1s", "1h", "1e3", "30 s", ""])
async def test_a_malformed_wait_is_a_400(start_api: Any, wait: str) -> None:
    api = await start_api()
    status, body = await api.get(f"/v1/documents/crm/doc-1?wait={wait}")
    assert (status, body["error"]) == (400, "invalid_request")
    assert "500ms, 30s, 1m" in body["message"]


async def test_waits_answer_at_once_when_the_api_shuts_down(
    start_api: Any, s3: Any, bucket: str, pipeline: HeldPipeline
) -> None:
    """Given clients waiting on a held document, when the replica starts shutting down (its
    on_shutdown hook), then each wait answers at once with the current status, and new
    waits do not wait either: their clients ask again elsewhere or after the restart."""
    document_id = f"held-shutdown-{uuid.uuid4().hex[:6]}"
    put_text_documents(s3, bucket, [document_id])
    api = await start_api(routing(0))
    await api.ingest(document_id, f"documents/crm/{document_id}")
    url = f"/v1/documents/crm/{document_id}"
    try:
        await until_step(api, url, "write_graph")
        waits = [asyncio.create_task(timed_get(api, f"{url}?wait=30s")) for _ in range(5)]
        await asyncio.sleep(0.5)
        api.service.reader.close()
        answers = await asyncio.gather(*waits)
        late = await timed_get(api, f"{url}?wait=30s")
        assert {(s, b["status"]) for _, s, b in [*answers, late]} == {(200, "embeddings_generated")}
        assert max(elapsed for elapsed, _, _ in [*answers, late]) < WAIT
        assert api.service.reader.waiting == 0
    finally:
        pipeline.release(document_id)
    await api.service.drain()


async def test_batch_status_answers_every_document_in_one_call(
    start_api: Any, s3: Any, bucket: str
) -> None:
    """Given finished documents on both paths, with a token set, when one batch asks for
    them, an unknown one and a malformed one (no token: a read), then each gets its own
    answer in order; a batch over API_MAX_STATUS_BATCH or of the wrong shape is one 400."""
    run = uuid.uuid4().hex[:6]
    by_path: dict[bool, list[str]] = {True: [], False: []}
    for i in range(100):  # three on each path at 50%
        document_id = f"batch-{run}-{i}"
        by_path[should_use_temporal(document_id, 50)].append(document_id)
    ids = by_path[True][:3] + by_path[False][:3]
    put_text_documents(s3, bucket, ids)
    api = await start_api(routing(50), auth_token="t", max_status_batch=8)
    for document_id in ids:
        status, _, _ = await api.post(
            "/v1/documents",
            {"document_id": document_id, "source": "crm"},
            headers={"Authorization": "Bearer t"},
        )
        assert status == 202
    await api.service.drain()
    items: list[Any] = [{"source": "crm", "document_id": d} for d in ids]
    items += [{"source": "crm", "document_id": "never-posted"}, {"source": "CRM!", "x": 1}]

    status, body, headers = await api.post("/v1/documents:status", {"documents": items})
    assert status == 200 and "Retry-After" not in headers
    results = body["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert [r["http_status"] for r in results] == [200] * 6 + [404, 400]
    assert {r["status"] for r in results[:6]} == {"completed"}
    assert {r["path"] for r in results[:6]} == {"legacy", "temporal"}
    for result, document_id in zip(results[:6], ids, strict=True):
        alone = {k: v for k, v in result.items() if k not in ("index", "http_status")}
        assert await api.get(f"/v1/documents/crm/{document_id}") == (200, alone)
    assert (results[6]["error"], results[7]["error"]) == ("not_found", "invalid_request")

    for wrong in ({"documents": items + items}, {"documents": []}, [items], {"ids": ids}):
        status, answer, _ = await api.post("/v1/documents:status", wrong)
        assert (status, answer["error"]) == (400, "invalid_request")


class SlowStart:
    """The test's Temporal client, whose workflow starts take START_DELAY longer (as over a
    slow network): reads of a document being accepted land while Temporal does not know it."""

    START_DELAY = 0.3

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self.START_DELAY)
        return await self._client.start_workflow(*args, **kwargs)


async def test_reads_racing_a_workflow_start_never_make_the_document_unknown(
    start_api: Any, s3: Any, bucket: str, worker: Any
) -> None:
    """Given a client reading a Temporal-path document every 10 ms while it is being posted
    and its workflow takes 0.3 s to start, when the POST has answered 202, then a wait on it
    answers `completed`, never 404; reads while it starts say pending (found by
    bench/status_bench.py: such a read was kept as "unknown", and waits after the 202 said
    404)."""
    api = await start_api(routing(100), temporal=SlowStart(worker.client))
    document_id = f"race-{uuid.uuid4().hex[:6]}"
    put_text_documents(s3, bucket, [document_id])
    url = f"/v1/documents/crm/{document_id}"
    posted = asyncio.Event()

    async def reads() -> set[tuple[int, str | None]]:
        seen = set()
        while not posted.is_set():
            status, body = await api.get(url)
            seen.add((status, body.get("status")))
            await asyncio.sleep(0.01)
        return seen

    racing = asyncio.create_task(reads())
    await api.ingest(document_id, f"documents/crm/{document_id}")
    posted.set()
    status, body = await api.get(f"{url}?wait=30s")
    assert (status, body.get("status")) == (200, "completed"), body
    seen = await racing
    assert (200, "pending") in seen and {s for s, _ in seen} <= {200, 404}, seen

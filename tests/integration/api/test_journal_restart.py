"""A 202 outlives the API process (issue 16, items 1-2), with real Temporal, S3 and graph:
a replica started on the journal a previous process left resumes every unfinished
document and answers status for everything that process accepted.

The SIGKILL of a real `ingestion-api` process is tests/faults/test_api_crash.py; here the
"previous process" is a journal written as it would have been, so each case is exact."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from ingestion_api.journal import Journal
from ingestion_api.routing import RoutingConfig, should_use_temporal
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_worker.graph import GraphWriter
from sample_documents import put_text_documents

pytestmark = pytest.mark.asyncio


def documents_in_graph(graph: GraphWriter, database: str | None, ids: list[str]) -> dict[str, int]:
    """document_id -> number of Document nodes of source crm with it (1: written exactly once).

    Only `ids`: the session's graph server may hold other tests' documents."""
    rows = graph.for_database(database)._run(
        "MATCH (d:Document {source: 'crm'}) WHERE d.document_id IN $ids "
        "RETURN d.document_id AS id, count(d) AS n",
        {"ids": ids},
    )
    return {row["id"]: int(row["n"]) for row in rows}


async def test_a_restarted_replica_resumes_what_the_previous_one_accepted(
    start_api: Any, s3: Any, bucket: str, worker: Any, shared_graph: GraphWriter, tmp_path: Path
) -> None:
    """Given a journal with 4 legacy and 2 Temporal documents accepted but unfinished (the
    process died after the 202s, before any workflow start was recorded as finished),
    when a replica starts on it, then each is written to the graph exactly once, reported
    completed, and counted as resumed."""
    run = uuid.uuid4().hex[:8]
    legacy = [f"resume-{run}-l{i}" for i in range(4)]
    temporal = [f"resume-{run}-t{i}" for i in range(2)]
    put_text_documents(s3, bucket, legacy + temporal)
    path = str(tmp_path / "previous.sqlite3")
    previous = Journal(path)
    for document_id in legacy:
        previous.accept("crm", document_id, "legacy", None, None)
    for document_id in temporal:  # no workflow exists yet: the resume must start it
        previous.accept("crm", document_id, "temporal", None, None)
    previous.close()

    api = await start_api(journal_path=path)
    await api.service.drain()

    for document_id in legacy + temporal:
        status, body = await api.get(f"/v1/documents/crm/{document_id}")
        assert status == 200 and body["status"] == "completed", body
    written = documents_in_graph(shared_graph, worker.settings.neo4j_database, legacy + temporal)
    assert written == {d: 1 for d in legacy + temporal}
    _, metrics = await api.get("/metrics")
    assert 'ingestion_resumed_documents_total{path="legacy"}' in metrics
    reopened = Journal(path)
    assert reopened.unfinished() == []
    assert {reopened.get("crm", d).runs for d in legacy + temporal} == {2}  # type: ignore[union-attr]


async def test_status_is_answered_after_a_restart_for_every_accepted_document(
    start_api: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Given documents finished on both paths (one failed: its object is missing), when a
    new replica starts on the same journal, then it answers each status as it ended,
    without running anything again."""
    ids = [f"kept-{i}" for i in range(8)]
    put_text_documents(s3, bucket, ids)
    path = str(tmp_path / "journal.sqlite3")
    half = StaticRoutingSource(RoutingConfig(percentage=50))
    first = await start_api(half, journal_path=path)
    for document_id in [*ids, "kept-missing"]:
        await first.ingest(document_id, f"documents/crm/{document_id}")
    await first.service.drain()
    expected = {d: (await first.get(f"/v1/documents/crm/{d}"))[1] for d in ids}

    second = await start_api(half, journal_path=path)
    assert second.service.in_flight == 0  # nothing to resume: every document had finished
    for document_id in ids:
        status, body = await second.get(f"/v1/documents/crm/{document_id}")
        assert (status, body) == (200, expected[document_id])
        assert body["status"] == "completed"
        assert body["path"] == ("temporal" if should_use_temporal(document_id, 50) else "legacy")
    status, body = await second.get("/v1/documents/crm/kept-missing")
    assert status == 200 and body["status"] == "failed", body
    assert body["error_type"] == "DocumentNotFoundError"

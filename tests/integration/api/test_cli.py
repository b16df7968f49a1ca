"""The `ingestion` CLI as a user runs it: a separate process talking HTTP to a real replica.

The replica serves from this test's event loop, so the CLI runs through
asyncio.create_subprocess_exec (a blocking subprocess.run would starve the server).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.storage import FetchedObject
from sample_documents import text_document

pytestmark = pytest.mark.asyncio

CLI_TIMEOUT = 60.0


@dataclass
class Run:
    code: int
    out: str
    err: str


async def cli(api: str, *args: str, token: str | None = None) -> Run:
    """Run `python -m ingestion_api.cli --api API [--token T] ARGS...` to completion."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTION_API_")}
    argv = [sys.executable, "-m", "ingestion_api.cli", "--api", api]
    if token is not None:
        argv += ["--token", token]
    process = await asyncio.create_subprocess_exec(
        *argv,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def put_document(s3: Any, bucket: str, document_id: str) -> None:
    """A small text document where the worker settings look by default."""
    s3.put_object(
        Bucket=bucket,
        Key=f"documents/crm/{document_id}",
        Body=text_document(2_000),
        ContentType="text/plain",
    )


class GatedPipeline(Pipeline):
    """The real pipeline, whose downloads wait until `gate` is set (a document held in flight)."""

    gate: threading.Event

    @classmethod
    def around(cls, pipeline: Pipeline, gate: threading.Event) -> GatedPipeline:
        p = pipeline
        gated = cls(p.settings, p.store, p.extractor, p.embedder, p.graph)
        gated.gate = gate
        return gated

    def fetch(self, bucket: str, key: str, **kwargs: Any) -> FetchedObject:
        self.gate.wait(CLI_TIMEOUT)
        return super().fetch(bucket, key, **kwargs)


def routing(percentage: int) -> StaticRoutingSource:
    return StaticRoutingSource(RoutingConfig(percentage=percentage))


@pytest.mark.parametrize(("percentage", "path"), [(0, "legacy"), (100, "temporal")])
async def test_ingest_wait_completes(
    start_api: Any, s3: Any, bucket: str, percentage: int, path: str
) -> None:
    # given a document in S3 and a replica routing everything to one path
    document_id = f"cli-{uuid.uuid4().hex[:8]}"
    put_document(s3, bucket, document_id)
    replica = await start_api(routing=routing(percentage))
    # when the CLI ingests it and waits
    run = await cli(replica.url, "ingest", "crm", document_id, "--wait", "--interval", "0.1")
    # then it took that path, finished, and `status` agrees
    assert run.code == 0, run
    assert f"path={path}" in run.out
    assert f"/v1/documents/crm/{document_id}" in run.out
    assert run.out.rstrip().endswith("status: completed"), run.out
    status = await cli(replica.url, "status", "crm", document_id)
    assert status.code == 0, status
    assert "status: completed" in status.out and f"path: {path}" in status.out


async def test_ingest_wait_reports_a_failed_document(start_api: Any) -> None:
    # given a replica on the legacy path and a document that is not in S3
    replica = await start_api(routing=routing(0))
    # when the CLI ingests it and waits
    run = await cli(replica.url, "ingest", "crm", "cli-missing", "--wait", "--interval", "0.1")
    # then it exits 1 and shows why; `status` says the same
    assert run.code == 1, run
    assert "status: failed" in run.out
    status = await cli(replica.url, "status", "crm", "cli-missing")
    assert status.code == 1, status
    assert "DocumentNotFoundError" in status.out


@pytest.mark.parametrize("percentage", [0, 100])
async def test_status_of_an_unknown_document_exits_3(start_api: Any, percentage: int) -> None:
    replica = await start_api(routing=routing(percentage))
    run = await cli(replica.url, "status", "crm", f"never-{uuid.uuid4().hex[:8]}")
    assert run.code == 3, run
    assert "no ingestion known" in run.err


@pytest.mark.parametrize("percentage", [0, 100])
async def test_batch_of_three_is_all_accepted(
    start_api: Any, s3: Any, bucket: str, percentage: int
) -> None:
    # given three documents in S3
    ids = [f"batch-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for document_id in ids:
        put_document(s3, bucket, document_id)
    replica = await start_api(routing=routing(percentage))
    # when the CLI submits them as one batch
    run = await cli(replica.url, "batch", "crm", *ids)
    # then each one is reported accepted and the command succeeds
    assert run.code == 0, run
    assert run.out.count("accepted batch-") == 3, run.out
    assert "3/3 accepted" in run.out
    await replica.service.drain()
    for document_id in ids:
        status = await cli(replica.url, "status", "crm", document_id)
        assert "status: completed" in status.out, status


async def test_batch_from_a_json_lines_file(
    start_api: Any, s3: Any, bucket: str, tmp_path: Any
) -> None:
    # given one document at a custom key and a file naming it and two plain ids
    s3.put_object(Bucket=bucket, Key="custom/place.txt", Body=b"hello", ContentType="text/plain")
    listing = tmp_path / "ids.jsonl"
    listing.write_text('{"document_id": "jl-1", "key": "custom/place.txt"}\njl-2\n\njl-3\n')
    replica = await start_api(routing=routing(0))
    # when the CLI submits the file
    run = await cli(replica.url, "batch", "crm", "--file", str(listing))
    # then all three are accepted; the one with a key was read from there
    assert run.code == 0, run
    assert "3/3 accepted" in run.out
    await replica.service.drain()
    assert (await cli(replica.url, "status", "crm", "jl-1")).code == 0


async def test_invalid_document_id_exits_2_with_the_api_message(start_api: Any) -> None:
    replica = await start_api(routing=routing(0))
    run = await cli(replica.url, "ingest", "crm", "../etc/passwd")
    assert run.code == 2, run
    assert "HTTP 400" in run.err and "invalid document_id" in run.err


async def test_token_is_required_when_the_api_has_one(start_api: Any, s3: Any, bucket: str) -> None:
    # given a replica that wants a bearer token
    document_id = f"auth-{uuid.uuid4().hex[:8]}"
    put_document(s3, bucket, document_id)
    replica = await start_api(routing=routing(0), auth_token="s3cret")
    # when the CLI posts without the token, or with a wrong one, it is refused with exit 2
    missing = await cli(replica.url, "ingest", "crm", document_id)
    wrong = await cli(replica.url, "ingest", "crm", document_id, token="nope")
    for run in (missing, wrong):
        assert run.code == 2, run
        assert "HTTP 401" in run.err and "bearer token" in run.err
    # and with the token it is accepted and completes
    run = await cli(replica.url, "ingest", "crm", document_id, "--wait", token="s3cret")
    assert run.code == 0, run
    assert "status: completed" in run.out


async def test_overload_exits_4_and_mentions_retry_after(
    start_api: Any, s3: Any, bucket: str
) -> None:
    # given a replica that takes one document at a time, busy with one held in its download
    put_document(s3, bucket, "held")
    replica = await start_api(routing=routing(0), max_in_flight=1, retry_after_seconds=7)
    gate = threading.Event()
    replica.service.pipeline = GatedPipeline.around(replica.service.pipeline, gate)
    try:
        await replica.ingest("held", key="documents/crm/held")
        # when the CLI submits another
        run = await cli(replica.url, "ingest", "crm", "cli-overload")
    finally:
        gate.set()
        await replica.service.drain()
    # then it is told to come back later, and the held document still completed
    assert run.code == 4, run
    assert "HTTP 429" in run.err and "retry after 7 s" in run.err
    assert (await cli(replica.url, "status", "crm", "held")).code == 0


async def test_status_wait_answers_when_the_document_finishes(
    start_api: Any, s3: Any, bucket: str
) -> None:
    """Given a legacy document held in its download, when `ingestion status --wait` runs
    and the document is released a second later, then the CLI prints the finished status
    with its steps and exits 0; with a 1 s --timeout on a held document it exits 4."""
    document_id = f"cli-wait-{uuid.uuid4().hex[:8]}"
    put_document(s3, bucket, document_id)
    replica = await start_api(routing=routing(0))
    gate = threading.Event()
    replica.service.pipeline = GatedPipeline.around(replica.service.pipeline, gate)
    try:
        await replica.ingest(document_id, key=f"documents/crm/{document_id}")
        timed_out = await cli(replica.url, "status", "crm", document_id, "--wait", "--timeout", "1")
        waiting = asyncio.create_task(
            cli(replica.url, "status", "crm", document_id, "--wait", "--timeout", "50")
        )
        await asyncio.sleep(1.0)
        assert not waiting.done()
        gate.set()
        run = await waiting
    finally:
        gate.set()
        await replica.service.drain()
    assert timed_out.code == 4 and "not finished after 1 s" in timed_out.err, timed_out
    assert run.code == 0, run
    lines = run.out.rstrip().splitlines()
    assert lines[0] == "status: downloading", run.out
    assert lines[-5:-2] == ["status: completed", "path: legacy", "step: -"], run.out
    assert lines[-2].startswith("timings: download ") and lines[-1] == "error: -: -"

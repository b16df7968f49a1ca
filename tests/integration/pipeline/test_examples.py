"""The examples run as users run them: separate processes against the real servers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from sample_documents import FORMATS, text_document
from test_worker_process import worker_env

pytestmark = pytest.mark.asyncio

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


async def run_example(env: dict[str, str], script: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / script),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode()


@pytest.fixture
def example_env(worker: Any, temporal_server: Any, s3: Any, bucket: str) -> dict[str, str]:
    prefix = worker.settings.documents_prefix
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/crm/doc-1",
        Body=text_document(3_000),
        ContentType="text/plain",
    )
    s3.put_object(
        Bucket=bucket, Key=f"{prefix}/crm/doc-2", Body=FORMATS["html"][1], ContentType="text/html"
    )
    s3.put_object(Bucket=bucket, Key="2024/q3.pdf", Body=FORMATS["pdf"][1])
    return worker_env(worker.settings, temporal_server.address)


async def test_ingest_one(example_env: dict[str, str]):
    code, out = await run_example(example_env, "ingest_one.py", "--document-id", "doc-1")
    assert code == 0, out
    assert out.startswith("completed:") and "jane.doe@example.com" in out


async def test_ingest_and_poll(example_env: dict[str, str]):
    code, out = await run_example(example_env, "ingest_and_poll.py", "--document-id", "doc-1")
    assert code == 0, out
    assert "status: completed" in out and "write_graph" in out


async def test_custom_location(example_env: dict[str, str], bucket: str):
    code, out = await run_example(
        example_env,
        "custom_location.py",
        "--document-id",
        "q3",
        "--bucket",
        bucket,
        "--key",
        "2024/q3.pdf",
    )
    assert code == 0, out
    assert "completed: application/pdf" in out


async def test_handle_errors(example_env: dict[str, str]):
    code, out = await run_example(example_env, "handle_errors.py", "--document-id", "nope")
    assert code == 1
    assert "failed with DocumentNotFoundError" in out


async def test_ingest_batch(example_env: dict[str, str]):
    code, out = await run_example(example_env, "ingest_batch.py", "doc-1", "doc-2", "nope")
    assert code == 0, out
    assert "{'completed': 2, 'failed': 1}" in out

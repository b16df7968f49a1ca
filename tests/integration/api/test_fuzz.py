"""Fuzz the API against its own OpenAPI document with schemathesis (issue 16): no 5xx,
and every answer is one the document describes (status, content type, headers, schema).

The API is the real `ingestion-api` process, with a bearer token and half of the documents
routed to a real Temporal worker process, against the session's Temporal, S3 and graph
servers. schemathesis (its CLI, `st run`) reads GET /openapi.json from it and runs its
examples, coverage and fuzzing phases with every check, positive and negative data, for a
bounded time (FUZZ_SECONDS); the seed is fixed so a failure reproduces.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_processes import API, WORKER, Processes, environment, wait_ready
from ingestion_sandbox.servers.services import free_port
from ingestion_worker.settings import WorkerSettings

FUZZ_SECONDS = 20
TOKEN = "fuzz-token"
SEED = 1616


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop()


def test_the_api_answers_fuzzed_requests_as_its_openapi_document_says(
    settings: WorkerSettings, temporal_server: Any, processes: Processes, tmp_path: Path
) -> None:
    """Given the API process with a token, a journal and both paths in use, when
    schemathesis fuzzes every operation of GET /openapi.json for 20 s, then it finds no
    server error and no answer that the document does not describe."""
    settings = dataclasses.replace(settings, temporal_address=temporal_server.address)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    processes.start(WORKER, environment(settings))
    api = processes.start(
        API,
        environment(
            settings,
            API_HOST="127.0.0.1",
            API_PORT=str(port),
            API_AUTH_TOKEN=TOKEN,
            API_JOURNAL_PATH=str(tmp_path / "journal.sqlite3"),
            API_MAX_BATCH="5",
            API_MAX_STATUS_BATCH="5",
            API_MAX_WAIT_SECONDS="2",
            TEMPORAL_ROLLOUT_PERCENTAGE="50",
        ),
    )
    wait_ready(url, api)
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{url}/openapi.json",
            "--checks=all",
            "--mode=all",
            "--phases=examples,coverage,fuzzing",
            f"--max-time={FUZZ_SECONDS}",
            f"--seed={SEED}",
            "--workers=1",
            "--request-timeout=10",
            f"--header=Authorization: Bearer {TOKEN}",
            "--suppress-health-check=all",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 90,
        cwd=tmp_path,
    )
    assert run.returncode == 0, f"{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
    assert api.poll() is None, "the API process died under fuzzing"
    assert "unexpected error" not in processes.log(API), processes.log(API)

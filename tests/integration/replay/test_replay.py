"""Workflow determinism, proved by replay: the worker runs the workflow outside Temporal's
sandbox, so this is what fails CI when a change would break running workflows.

Two checks:
- the histories stored in `histories/` (real runs recorded on the dev server: healthy,
  retried, failed, shadow, in both shapes, plus runs of the pre-patch workflow) replay
  against the current code, with and without the sandbox; a change of command order, or
  a new command without `workflow.patched`, fails here;
- the same scenarios run now on the dev server replay at once, which catches code that is
  non-deterministic by itself (clock, randomness, set order) before it is ever recorded.

After an intentional, patched workflow change, re-record the histories (README: Workflow
versioning):

    RECORD_HISTORIES=1 .venv/bin/pytest tests/integration/replay

and keep the old ones that still describe runs a deployed worker may meet (v0-* are runs
of the workflow from before the inline group).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.pipeline import build_pipeline
from ingestion_worker.worker import build_worker
from ingestion_worker.workflows import DocumentIngestionWorkflow
from sample_documents import text_document
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

pytestmark = pytest.mark.asyncio

HISTORIES = Path(__file__).parent / "histories"
RECORD = os.environ.get("RECORD_HISTORIES") == "1"
RUNNERS: dict[str, Callable[[], WorkflowRunner]] = {
    "unsandboxed": UnsandboxedWorkflowRunner,
    "sandboxed": SandboxedWorkflowRunner,
}
#: Documents up to this size take the inline shape in these scenarios; larger, the chain.
INLINE_BYTES = 1_000


async def replay(histories: list[WorkflowHistory], runner: str) -> dict[str, str]:
    """Workflow id -> replay failure, for every history that does not replay."""
    replayer = Replayer(workflows=[DocumentIngestionWorkflow], workflow_runner=RUNNERS[runner]())

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    names = {history.run_id: history.workflow_id for history in histories}
    return {names.get(run, run): repr(err) for run, err in results.replay_failures.items()}


def stored() -> list[WorkflowHistory]:
    """The recorded histories, each named by its file."""
    files = sorted(HISTORIES.glob("*.json"))
    return [WorkflowHistory.from_json(path.stem, path.read_text()) for path in files]


@pytest.mark.parametrize("runner", sorted(RUNNERS))
async def test_recorded_histories_replay_on_the_current_code(runner: str) -> None:
    # given the stored histories of real runs, in both shapes and from before the patch
    histories = stored()
    names = {h.workflow_id for h in histories}
    assert {"inline-healthy", "inline-retried", "inline-failed", "chain-healthy"} <= names
    assert {"chain-retried", "chain-failed", "v0-chain-healthy", "v0-chain-failed"} <= names
    # when they are replayed against the workflow as it is now; then every one replays
    assert await replay(histories, runner) == {}


@dataclasses.dataclass
class Scenarios:
    """A worker whose embeddings come from the local API server (so a 503 can be asked
    for), taking the inline shape for documents up to INLINE_BYTES."""

    client: Client
    task_queue: str
    bucket: str
    s3: Any
    embeddings: Any

    async def run(self, name: str, key: str, body: bytes | None, **request: Any) -> Any:
        if body is not None:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        handle = await start_ingestion(
            self.client,
            IngestDocumentInput(name, "replay", key=key, **request),
            self.task_queue,
            workflow_id=name,
        )
        return handle, await handle.result()


@pytest.fixture
async def scenarios(
    temporal_client: Client,
    make_settings: Any,
    shared_graph: Any,
    embeddings_server: Any,
    s3: Any,
    bucket: str,
) -> AsyncIterator[Scenarios]:
    embeddings_server.reset()
    settings = make_settings(
        openai_api_key="test-key",
        openai_base_url=embeddings_server.base_url,
        inline_document_bytes=INLINE_BYTES,
        inline_limit_bytes=1_500,  # the chain's text and chunks spill to S3, then cleanup
    )
    pipeline = build_pipeline(settings, shared_graph.for_database(settings.neo4j_database))
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(temporal_client, settings, pipeline, executor):
            yield Scenarios(temporal_client, settings.task_queue, bucket, s3, embeddings_server)
    embeddings_server.reset()


def _scenarios() -> dict[str, tuple[str, bytes | None, dict[str, Any], int, IngestionStatus]]:
    """name -> (key, body, request fields, embeddings failures first, expected status)."""
    small, large = text_document(600), text_document(3_000)
    corrupt = b"%PDF-1.7\n" + b"\x00garbage" * 300
    done, failed = IngestionStatus.COMPLETED, IngestionStatus.FAILED
    return {
        "inline-healthy": ("a.txt", small, {}, 0, done),
        "inline-retried": ("a.txt", small, {}, 1, done),
        "inline-failed": ("missing.txt", None, {}, 0, failed),
        "inline-shadow": ("a.txt", small, {"write_graph": False}, 0, done),
        "chain-healthy": ("b.txt", large, {}, 0, done),
        "chain-retried": ("b.txt", large, {}, 1, done),
        "chain-failed": ("c.pdf", corrupt, {}, 0, failed),
    }


async def test_real_runs_of_every_shape_replay_deterministically(scenarios: Scenarios) -> None:
    # given real runs on the dev server: healthy, retried (one 503 from the embeddings API),
    # failed and shadow, in the inline shape and in the chain shape
    histories = []
    for name, (key, body, request, failures, expected) in _scenarios().items():
        scenarios.embeddings.fail_next(failures, status=503)
        handle, result = await scenarios.run(name, key, body, **request)
        assert result.status == expected, (name, result.error_message)
        histories.append(await handle.fetch_history())
        if RECORD:
            (HISTORIES / f"{name}.json").write_text(histories[-1].to_json())
    # when they are replayed at once; then each replays, with and without the sandbox
    for runner in RUNNERS:
        assert await replay(histories, runner) == {}, runner

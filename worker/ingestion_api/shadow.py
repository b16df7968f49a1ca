"""Comparing the two paths' results for the same document (shadow / parallel mode).

Only what both paths must agree on is compared: the outcome, the entity set, the
chunk count and the content hash. Timings and the path itself differ by nature.
The shadow run is not journaled: a crash loses a comparison, never a document.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import Executor
from dataclasses import replace

from ingestion_worker.client import start_ingestion
from ingestion_worker.legacy import ingest_legacy
from ingestion_worker.models import (
    IngestDocumentInput,
    IngestDocumentResult,
    IngestionPath,
    workflow_id_for,
)
from ingestion_worker.pipeline import Pipeline
from temporalio.client import Client

from ingestion_api.metrics import SHADOW_COMPARISONS, SHADOW_MISMATCHES

log = logging.getLogger("ingestion_api")


def differing_fields(a: IngestDocumentResult, b: IngestDocumentResult) -> list[str]:
    """Names of the compared fields whose values differ (empty: the paths agree)."""
    differences = []
    if a.status != b.status:
        differences.append("status")
    if {(e.type, e.value, e.count) for e in a.entities} != {
        (e.type, e.value, e.count) for e in b.entities
    }:
        differences.append("entities")
    if a.chunk_count != b.chunk_count:
        differences.append("chunk_count")
    if a.content_hash != b.content_hash:
        differences.append("content_hash")
    return differences


def sampled(document_id: str, rate: float) -> bool:
    """Deterministic sampling: the same document is always (or never) shadowed at a rate.

    Uses a different hash than routing so the shadowed set is not the routed set.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha1(document_id.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < rate


class ShadowRunner:
    """Runs the other path of a shadowed document and compares; never counted as traffic."""

    def __init__(
        self, temporal: Client, task_queue: str, pipeline: Pipeline, executor: Executor
    ) -> None:
        self.temporal, self.task_queue = temporal, task_queue
        self.pipeline, self.executor = pipeline, executor

    def start(
        self, primary: IngestionPath, request: IngestDocumentInput
    ) -> asyncio.Future[IngestDocumentResult]:
        legacy = primary == IngestionPath.LEGACY
        other = IngestionPath.TEMPORAL if legacy else IngestionPath.LEGACY
        return asyncio.ensure_future(self._run(other, request))

    async def _run(self, path: IngestionPath, request: IngestDocumentInput) -> IngestDocumentResult:
        """The other path, computing everything but leaving the graph alone."""
        dry = replace(request, write_graph=False)
        if path == IngestionPath.TEMPORAL:
            workflow_id = workflow_id_for(request.source, request.document_id) + "/shadow"
            handle = await start_ingestion(self.temporal, dry, self.task_queue, workflow_id)
            return await handle.result()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, ingest_legacy, dry, self.pipeline)

    async def settle(
        self, primary: IngestDocumentResult, shadow: asyncio.Future[IngestDocumentResult]
    ) -> None:
        """Compare with the shadow run; a broken shadow is logged, never counted as traffic."""
        try:
            compare(primary, await shadow)
        except Exception:
            log.exception("shadow run for %s/%s failed", primary.source, primary.document_id)


def compare(primary: IngestDocumentResult, shadow: IngestDocumentResult) -> None:
    """Count the comparison, and a mismatch with the differing fields logged."""
    SHADOW_COMPARISONS.inc()
    differences = differing_fields(primary, shadow)
    if differences:
        SHADOW_MISMATCHES.inc()
        details = {f: (getattr(primary, f), getattr(shadow, f)) for f in differences}
        log.warning(
            "shadow mismatch for %s/%s (%s vs %s): %s",
            primary.source,
            primary.document_id,
            primary.path,
            shadow.path,
            details,
        )

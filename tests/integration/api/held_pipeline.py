"""A real pipeline with two planted behaviours, for status tests on both paths.

- Documents whose id starts with "held-" wait at the graph write (the last step) until the
  test releases them: a document held in flight, on the legacy path (in the API process)
  or the Temporal path (in the worker's write_graph activity), for as long as a test needs.
- Documents whose id starts with "flaky-" fail their first download with a retryable S3
  error (as a throttled S3 would), so the step is retried and the document completes.

Everything else is the real pipeline against the real servers.
"""

from __future__ import annotations

import threading
from typing import Any

from ingestion_worker.errors import TransientStorageError
from ingestion_worker.pipeline import Pipeline
from ingestion_worker.storage import FetchedObject

HOLD_LIMIT_SECONDS = 60.0


class Planted:
    """What the copies of one pipeline share (the legacy path copies it per run)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gates: dict[str, threading.Event] = {}
        self.failed_once: set[str] = set()

    def gate(self, document_id: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(document_id, threading.Event())


class HeldPipeline(Pipeline):
    planted: Planted

    @classmethod
    def around(cls, pipeline: Pipeline) -> HeldPipeline:
        p = pipeline
        held = cls(p.settings, p.store, p.extractor, p.embedder, p.graph)
        held.planted = Planted()
        return held

    def release(self, document_id: str) -> None:
        self.planted.gate(document_id).set()

    def fetch(self, bucket: str, key: str, **kwargs: Any) -> FetchedObject:
        name = key.rsplit("/", 1)[-1]
        if name.startswith("flaky-"):
            with self.planted.lock:
                first = name not in self.planted.failed_once
                self.planted.failed_once.add(name)
            if first:
                raise TransientStorageError(f"SlowDown: S3 throttled {name} (planted)")
        return super().fetch(bucket, key, **kwargs)

    def write(self, **kwargs: Any) -> None:
        document_id = kwargs["document_id"]
        if document_id.startswith("held-"):
            self.planted.gate(document_id).wait(HOLD_LIMIT_SECONDS)
        super().write(**kwargs)

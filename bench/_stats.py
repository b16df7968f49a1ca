"""What the benchmarks share: a percentile, and worker settings for the local servers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from ingestion_sandbox.servers.services import FalkorDBServer, S3Server, TemporalDevServer
from ingestion_worker.settings import WorkerSettings


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def settings_for(
    temporal: TemporalDevServer, s3: S3Server, graph: FalkorDBServer, **overrides: Any
) -> WorkerSettings:
    """Worker settings pointing at the benchmark's own servers, on a fresh task queue."""
    base = WorkerSettings(
        temporal_address=temporal.address,
        task_queue=f"bench-{uuid.uuid4().hex[:6]}",
        s3_endpoint_url=s3.endpoint_url,
        neo4j_uri=graph.bolt_uri,
        neo4j_max_message_bytes=4000,  # FalkorDB's Bolt port: see graph.py
        metrics_port=0,
    )
    return replace(base, **overrides)

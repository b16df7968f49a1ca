"""What the benchmarks share: percentiles, spreads over runs, CPU time of processes from /proc,
worker settings for the local servers, and what a crashed server said."""

from __future__ import annotations

import os
import re
import statistics
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ingestion_sandbox.servers.common import ProcessService
from ingestion_sandbox.servers.services import FalkorDBServer, TemporalDevServer
from ingestion_worker.settings import WorkerSettings

_TICKS = os.sysconf("SC_CLK_TCK")
_CRASH_LINE = re.compile(r"crashed by signal|ssertion|ASSERTION")
_NAMED_FRAME = re.compile(r"falkordb\.so\([A-Za-z_]")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max) of the figures of several runs."""
    return statistics.median(values), min(values), max(values)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15


class CpuMeter:
    """CPU seconds each named process spends between start() and stop()."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._before: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self._before[name] for name, pid in self.pids.items()}


def settings_for(
    temporal: TemporalDevServer, s3: Any, graph: FalkorDBServer, **overrides: Any
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


def crash_lines(server: ProcessService, frames: int = 8) -> list[str]:
    """The crash and assertion lines of a server's whole log, then the named FalkorDB frames
    of its stack traces: a Redis bug report puts hundreds of lines of memory test and INFO
    after them, so a log's tail never shows them."""
    log = server.log_path.read_text(errors="replace") if server.log_path else ""
    lines = log.splitlines()
    found = [line for line in lines if _CRASH_LINE.search(line)]
    named = dict.fromkeys(line.strip() for line in lines if _NAMED_FRAME.search(line))
    return found + list(named)[:frames]

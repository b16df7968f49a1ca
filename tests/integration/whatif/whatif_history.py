"""The known past the what-if replay tests read: a real Prometheus whose TSDB was
backfilled with generated contract metrics (ingestion_sandbox.servers.prometheus_history),
and the plugin run as users run it, through the real kubectl.

Two histories, 80 minutes each, ending 10 minutes ago (so inside any retention):

- `incident`: healthy traffic (5 Temporal documents/s, 1% failing), then from
  INCIDENT_AT minutes in, an error rate that climbs by 0.45 points a minute to 10%;
- `gappy`: healthy, with the exporter restarted twice (every counter back to 0) and
  no scrape for ten minutes (a Prometheus outage).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from control_plane_plugin import unavailable
from ingestion_contract.crd import API_VERSION, KIND
from ingestion_sandbox.servers.common import ServiceUnavailable
from ingestion_sandbox.servers.prometheus_history import (
    ContractHistory,
    HistoryPrometheus,
    climbing_error_rate,
)

BIN = str(Path(sys.executable).parent)  # where pip put kubectl-ingestionrollout
MINUTE = 60
LENGTH = 80 * MINUTE
INCIDENT_AT = 45 * MINUTE  # after the start of the history
GAP = (40 * MINUTE, 50 * MINUTE)
RESTARTS = (20 * MINUTE + 7, 62 * MINUTE + 31)


@dataclass(frozen=True)
class Past:
    """The running Prometheus and the instants its histories were planted at."""

    prometheus: HistoryPrometheus
    start: int  # unix seconds: both histories begin here

    @property
    def url(self) -> str:
        return self.prometheus.url

    @property
    def incident(self) -> int:
        return self.start + INCIDENT_AT


def incident_rate(start: int) -> ContractHistory:
    rate = climbing_error_rate(start + INCIDENT_AT)
    return ContractHistory(start, start + LENGTH, job="incident", error_rate=rate)


def gappy(start: int) -> ContractHistory:
    return ContractHistory(
        start,
        start + LENGTH,
        job="gappy",
        error_rate=lambda _: 0.02,
        gaps=[(start + GAP[0], start + GAP[1])],
        restarts=[start + r for r in RESTARTS],
    )


def planted_past() -> Iterator[Past]:
    """The Prometheus of both histories (skipped, or failed under CI=true, without it)."""
    start = int(time.time()) // MINUTE * MINUTE - LENGTH - 10 * MINUTE
    try:
        server = HistoryPrometheus([incident_rate(start), gappy(start)])
    except ServiceUnavailable as exc:
        unavailable(exc)  # skipped, or failed under CI=true
        raise
    with server:
        yield Past(server, start)


def manifest(
    directory: Path, job: str, url: str, analysis: dict[str, Any] | None = None, **spec: Any
) -> Path:
    """A rollout reading `job`'s series: steps of 30 minutes, analysed every 30 s."""
    analysis = {"prometheusUrl": url, "metricLabels": {"job": job}, **(analysis or {})}
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": f"whatif-{job}"},
        "spec": {"steps": [10, 50, 100], "stepDuration": "30m", "analysis": analysis, **spec},
    }
    path = directory / f"{job}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def kubectl_replay(kubectl: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl ingestionrollout replay ...` with the installed plugin on PATH."""
    env = {**os.environ, "PATH": os.pathsep.join([BIN, os.environ.get("PATH", "")])}
    return subprocess.run(
        [kubectl, "ingestionrollout", "replay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

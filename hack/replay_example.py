#!/usr/bin/env python3
"""Produce the README's what-if replay example: the commands, their real output, the PNG.

    .venv/bin/python hack/replay_example.py [--chart docs/replay-example.png]

A real Prometheus (Debian's) is backfilled with promtool from a generated history of the
metric contract (ingestion_sandbox.servers.prometheus_history): 100 minutes ending 10
minutes ago, 5 Temporal and 45 legacy documents a second, 1% of Temporal failing, until
an incident planted 55 minutes in makes the error rate climb by 0.45 points a minute to
10%. A rollout manifest in four 20-minute steps is then replayed over it with the
installed `kubectl-ingestionrollout` (what `kubectl ingestionrollout` runs): once as
written, with the chart, and once compared with a tighter error-rate limit. Every
command and its output is printed, as the README shows them; the times differ from run
to run (the history always ends 10 minutes ago), the story does not.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from ingestion_contract.crd import API_VERSION, KIND
from ingestion_sandbox.servers.prometheus_history import (
    ContractHistory,
    HistoryPrometheus,
    climbing_error_rate,
)

PLUGIN = str(Path(sys.executable).parent / "kubectl-ingestionrollout")
REPO = Path(__file__).resolve().parent.parent
MINUTE = 60
LENGTH = 100 * MINUTE
INCIDENT_AT = 55 * MINUTE


def incident(start: int) -> ContractHistory:
    """Healthy, then from INCIDENT_AT an error rate climbing to 10%."""
    rate = climbing_error_rate(start + INCIDENT_AT)
    return ContractHistory(start, start + LENGTH, job="ingestion", error_rate=rate)


def manifest(directory: Path) -> Path:
    """The rollout as a team would apply it (its Prometheus is the cluster's)."""
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "ingestion"},
        "spec": {
            "steps": [10, 25, 50, 100],
            "stepDuration": "20m",
            "analysis": {
                "prometheusUrl": "http://prometheus.monitoring:9090",
                "metricLabels": {"job": "ingestion"},
            },
        },
    }
    path = directory / "rollout.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def show(args: list[str], directory: Path) -> None:
    """Run `kubectl ingestionrollout ARGS` (the plugin itself) in `directory` and print it
    as typed there."""
    print("$ kubectl ingestionrollout " + " ".join(args), flush=True)
    done = subprocess.run(
        [PLUGIN, *args], cwd=directory, capture_output=True, text=True, check=False
    )
    print(done.stdout + done.stderr, flush=True)
    if done.returncode != 0:
        raise SystemExit(f"exit code {done.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", default=str(REPO / "docs" / "replay-example.png"))
    args = parser.parse_args()
    start = int(time.time()) // MINUTE * MINUTE - LENGTH - 10 * MINUTE
    span = ["--from", iso(start + 5 * MINUTE), "--to", iso(start + LENGTH - 2 * MINUTE)]
    with HistoryPrometheus([incident(start)]) as prometheus, tempfile.TemporaryDirectory() as tmp:
        here = Path(tmp)
        manifest(here)
        given = ["replay", "-f", "rollout.yaml", *span, "--prometheus-url", prometheus.url]
        print(f"(incident planted at {iso(start + INCIDENT_AT)})\n", flush=True)
        show([*given, "--chart", "replay.png"], here)
        shutil.copyfile(here / "replay.png", args.chart)
        show([*given, "--compare", "analysis.thresholds.maxErrorRate=0.03"], here)


if __name__ == "__main__":
    main()

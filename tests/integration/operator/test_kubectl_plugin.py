"""`kubectl ingestionrollout` as users run it: the real kubectl finds the plugin on PATH
and the plugin steers a rollout the real operator is carrying out, on the real API server
(the user's kubeconfig is the control plane's admin one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from conftest import Traffic, own_targets
from conftest import body as rollout_body
from ingestion_contract.crd import GROUP
from operator_harness import Cluster, OperatorProcess, poll

BIN = str(Path(sys.executable).parent)  # where pip put kubectl-ingestionrollout


def plugin(
    kubectl: str, kubeconfig: Path, cluster: Cluster, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.pathsep.join([BIN, os.environ.get("PATH", "")])}
    command = [
        kubectl,
        "ingestionrollout",
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        cluster.namespace,
    ]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_plugin_reads_and_steers_a_rollout(
    kubectl: str,
    cluster: Cluster,
    operator: OperatorProcess,
    traffic: Traffic,
    prometheus: Any,
) -> None:
    # given a rollout holding each step for an hour
    kubeconfig = cluster.plane.kubeconfig
    traffic.fail(False)
    name = f"plugin-{uuid.uuid4().hex[:6]}"
    cluster.create(
        rollout_body(name, traffic, prometheus.url, **own_targets(cluster, stepDuration="1h"))
    )
    poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 10, "10%")
    # when listed, it shows in the printer columns
    listed = plugin(kubectl, kubeconfig, cluster, "status")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:3] == ["NAME", "PHASE", "WEIGHT"]
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(name))
    assert row[:5] == [name, "Progressing", "10", "1/3", "100"]
    # when promoted through the plugin, the operator moves it to the next step
    promoted = plugin(kubectl, kubeconfig, cluster, "promote", name)
    assert promoted.returncode == 0, promoted.stderr
    poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 50, "50%")
    # when paused and resumed, spec.paused follows and so does the phase
    assert plugin(kubectl, kubeconfig, cluster, "pause", name).returncode == 0
    assert cluster.rollout(name)["spec"]["paused"] is True
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Paused", "Paused")
    assert plugin(kubectl, kubeconfig, cluster, "resume", name).returncode == 0
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Progressing", "resumed")
    # when aborted, it rolls back; the detail view says why
    assert plugin(kubectl, kubeconfig, cluster, "abort", name).returncode == 0
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "RolledBack", "RolledBack")
    detail = plugin(kubectl, kubeconfig, cluster, "status", name)
    assert "aborted by annotation" in detail.stdout
    assert "50% -> 0%" in detail.stdout
    # when retried, it starts over; a short watch prints the live view
    assert plugin(kubectl, kubeconfig, cluster, "retry", name).returncode == 0
    watched = plugin(kubectl, kubeconfig, cluster, "status", name, "--watch", "--watch-for", "4")
    assert watched.stdout.count("--- ") >= 1
    poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 10, "10% again")
    annotations = cluster.rollout(name)["metadata"].get("annotations") or {}
    assert not [key for key in annotations if key.startswith(GROUP)]


def test_plugin_names_a_missing_rollout(kubectl: str, cluster: Cluster) -> None:
    result = plugin(kubectl, cluster.plane.kubeconfig, cluster, "promote", "no-such-rollout")
    assert result.returncode == 1
    assert "ingestionrollout/no-such-rollout: not found" in result.stderr

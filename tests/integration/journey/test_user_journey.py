"""The user journey of README, with the real kubectl and helm against a real kube-apiserver.

A user installs the chart with `helm install`, applies examples/rollout.yaml with `kubectl
apply`, watches it with `kubectl get ir -w`, waits on its conditions with `kubectl wait`,
reads the RolledBack Event with `kubectl get events --field-selector`, and asks the kubectl
plugin (`kubectl ingestionrollout status`, on PATH from the venv) what happened.

Around the user: the operator runs on this host (kwok runs no container) with the token
of the ServiceAccount the chart created, so it has exactly the chart's RBAC; the traffic is
the metric contract (ingestion_sandbox.servers.contract_metrics) scraped by a real
Prometheus, healthy until the fault switches every Temporal document to failing; the worker
Deployment's Pods run on kwok's Node, so the operator's scaling and its wait for available
replicas happen on real controllers. The example differs only in its intervals (a copy,
as `make demo` makes one) and in its Prometheus and label matchers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_plugin import InstalledChart, OperatorProcess
from ingestion_sandbox.servers.contract_metrics import ContractTraffic

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "rollout.yaml"
WINDOW = "10s"


@pytest.fixture
def traffic(prometheus: Any) -> Iterator[ContractTraffic]:
    """Healthy contract traffic on a port of its own, scraped every 500 ms."""
    feed = ContractTraffic(job=f"journey-{uuid.uuid4().hex[:8]}", per_second=20).start()
    prometheus.set_targets({feed.job: [feed.target]}, scrape_interval="500ms")
    prometheus.wait_for_series(
        f'increase(ingestion_documents_total{{job="{feed.job}",path="temporal"}}[{WINDOW}]) > 0',
        timeout=60,
    )
    yield feed
    feed.stop()


def fast_copy(chart: InstalledChart, prometheus_url: str, job: str, target: Path) -> Path:
    """examples/rollout.yaml in the chart's namespace, with seconds instead of minutes."""
    rollout = yaml.safe_load(EXAMPLE.read_text())
    rollout["metadata"]["namespace"] = chart.namespace
    spec = rollout["spec"]
    spec.update(stepDuration="3s", minHealthyDuration="3s", workersReadyTimeout="60s")
    spec["workers"][0]["maxReplicas"] = 4
    spec["analysis"].update(
        prometheusUrl=prometheus_url, interval="1s", window=WINDOW, minSampleCount=5,
        metricLabels={"job": job},
    )  # fmt: skip
    target.write_text(yaml.safe_dump(rollout, sort_keys=False))
    return target


class User:
    """The user's shell: the built kubectl first on PATH, then the venv (for the plugin)."""

    def __init__(self, chart: InstalledChart) -> None:
        path = os.pathsep.join([str(chart.plane.bin_dir), str(Path(sys.executable).parent)])
        self.env = {**os.environ, "PATH": f"{path}{os.pathsep}{os.environ.get('PATH', '')}",
                    "KUBECONFIG": str(chart.plane.kubeconfig)}  # fmt: skip
        self.namespace = chart.namespace

    def kubectl(self, command_name: str, *args: str, timeout: float = 90) -> str:
        """`kubectl COMMAND -n NS ARGS` (a plugin takes its flags after its name)."""
        command = ["kubectl", command_name, "-n", self.namespace, *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
        return done.stdout

    def watch(self, log: Path) -> subprocess.Popen[bytes]:
        """`kubectl get ir -w` in the background, its output in `log`."""
        with open(log, "wb") as out:
            return subprocess.Popen(["kubectl", "-n", self.namespace, "get", "ir", "-w"],
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


@pytest.mark.timeout(240)
def test_install_apply_watch_fault_rollback(
    installed_chart: InstalledChart, traffic: ContractTraffic, prometheus: Any, tmp_path: Path
) -> None:
    """Given `helm install` done and the operator running with the chart's token, when the
    user applies the example (fast) and waits for 50%, then `kubectl get ir -w` shows it
    walk 0 -> 10 -> 50 with the worker Deployment scaled up; when the fault makes every
    Temporal document fail, then `kubectl wait --for=condition=RolledBack` returns, the
    routing ConfigMap is back at 0, `kubectl get events --field-selector reason=RolledBack`
    names the error rate, and `kubectl ingestionrollout status` shows the rollback."""
    chart, user = installed_chart, User(installed_chart)
    assert shutil.which("kubectl-ingestionrollout", path=user.env["PATH"]), "plugin not on PATH"
    rollout = fast_copy(chart, prometheus.url, traffic.job, tmp_path / "rollout.yaml")
    name = yaml.safe_load(rollout.read_text())["metadata"]["name"]
    watch_log = tmp_path / "get-ir-w.txt"
    with OperatorProcess(chart, tmp_path / "operator.log") as operator:
        watcher = user.watch(watch_log)
        try:
            applied = user.kubectl("apply", "-f", str(rollout))
            assert f"ingestionrollout.ingestion.apexmemory.io/{name} created" in applied
            user.kubectl("wait", f"ir/{name}", "--for=jsonpath={.status.currentPercentage}=50",
                         "--timeout=90s")  # fmt: skip
            workers = json.loads(user.kubectl("get", "deployment", chart.worker_deployment,
                                              "-o", "json"))  # fmt: skip
            traffic.fail()
            user.kubectl("wait", f"ir/{name}", "--for=condition=RolledBack", "--timeout=60s")
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
            print(operator.tail())
    watched = watch_log.read_text()
    print(watched)
    weights = [line.split()[2] for line in watched.splitlines()[1:] if line.startswith(name)]
    assert {"10", "50"} <= set(weights), watched
    assert weights.index("10") < weights.index("50") < len(weights) - 1, watched
    assert watched.splitlines()[-1].split()[1:3] == ["RolledBack", "0"], watched
    assert workers["spec"]["replicas"] == 2  # ceil(maxReplicas 4 * 50%): scaled for 50%
    routing = json.loads(user.kubectl("get", "configmap", chart.routing_configmap, "-o", "json"))
    assert routing["data"][chart.routing_key] == "0"
    events = user.kubectl("get", "events", "--field-selector", "reason=RolledBack")
    assert "errorRate" in events and f"ingestionrollout/{name}" in events, events
    status = user.kubectl("ingestionrollout", "status", name)
    print(status)
    assert "RolledBack" in status and "errorRate" in status, status

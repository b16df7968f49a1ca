"""Fixtures for tests of the Helm chart: the helm CLI, and the chart installed by `helm install`
on the local control plane (registered by conftest.py, next to control_plane_plugin).

`helm_cli` is the path of the helm binary hack/control-plane/build.sh builds (the chart's
offline tests render with it too). `install_chart` installs the chart into the test's
`kube_namespace` as a user would, with values that suit kwok (the image is never pulled:
kwok's fake kubelet runs no container) and returns what a test needs to act as the chart's
processes do: the release, the namespace, the object names, and kubeconfigs holding
TokenRequest tokens of the operator's and the API's ServiceAccounts, so that a process
started with one has exactly the RBAC the chart grants. `installed_chart` is the default
install; `module_chart` one install shared by a module; `install()` the same for any
fixture scope. `OperatorProcess(chart, log)` runs the operator on this host (kwok runs no
container) with the chart's operator token, as the chart's Deployment configures it.

Binaries that are not built skip the tests with the build command; on CI (CI=true) they
fail them instead, as for every other local server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ingestion_sandbox.servers.common import LOCALHOST, free_port
from ingestion_sandbox.servers.control_plane import ControlPlane

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "apex-ingestion-rollout"
RELEASE = "ingestion"  # README's release name: objects are named ingestion-<component>
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
# kwok's Pods never pull an image; one API replica is enough for RBAC and routing checks.
TEST_VALUES: dict[str, Any] = {
    "image": {"repository": "registry.invalid/apex-ingestion-rollout"},
    "api": {"replicas": 1},
}


def _load_helm_chart() -> ModuleType:
    """hack/helm_chart.py (a script, not a package), shared with tests/unit/hack_modules."""
    if "helm_chart" in sys.modules:
        return sys.modules["helm_chart"]
    spec = importlib.util.spec_from_file_location("helm_chart", REPO / "hack" / "helm_chart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["helm_chart"] = module
    spec.loader.exec_module(module)
    return module


helm_chart = _load_helm_chart()


@dataclass(frozen=True)
class InstalledChart:
    """A release of the chart installed by `helm install` into its own namespace."""

    plane: ControlPlane
    release: str
    namespace: str
    values: dict[str, Any]  # every value, the chart's defaults included
    operator_kubeconfig: Path  # the operator ServiceAccount's token: its RBAC, nothing more
    api_kubeconfig: Path  # the same for the ingestion API

    def name(self, component: str) -> str:
        """The chart's name for a component's objects (release "ingestion": ingestion-api)."""
        prefix = self.release if "ingestion" in self.release else f"{self.release}-ingestion"
        return f"{prefix}-{component}"

    @property
    def routing_configmap(self) -> str:
        return str(self.values["routing"]["configMapName"])

    @property
    def routing_key(self) -> str:
        return str(self.values["routing"]["key"])

    @property
    def worker_deployment(self) -> str:
        return str(self.values["worker"]["deploymentName"])

    def helm(self, *args: str, check: bool = True) -> Any:
        """`helm ARGS -n NAMESPACE` against the control plane (admin)."""
        return self.plane.helm(*args, "-n", self.namespace, check=check)

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> Any:
        """`kubectl -n NAMESPACE ARGS` (admin unless `kubeconfig`)."""
        return self.plane.kubectl(
            "-n", self.namespace, *args, kubeconfig=kubeconfig, input=input, check=check
        )

    def get(self, *args: str) -> Any:
        """`kubectl get ARGS -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


def unavailable(message: str) -> None:
    """Skip the test, or fail it on CI (CI=true), saying what is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing binary fails instead of skipping)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def helm_cli() -> str:
    """The helm binary (the control plane's build); skip, or fail on CI, without it."""
    try:
        return str(helm_chart.helm_binary())
    except helm_chart.HelmNotFound as exc:
        unavailable(str(exc))
        raise  # unreachable: skip/fail raise


def install(
    plane: ControlPlane,
    namespace: str,
    values: Mapping[str, Any] | None = None,
    release: str = RELEASE,
    wait: bool = True,
    chart: Path = CHART,
) -> InstalledChart:
    """`helm install RELEASE CHART -n NAMESPACE -f <TEST_VALUES + values> [--wait]`, and the
    operator's and the API's ServiceAccount tokens (kubeconfigs) once it is installed."""
    overrides = helm_chart.merge_values(TEST_VALUES, values or {})
    with tempfile.TemporaryDirectory(prefix="values-") as workdir:
        values_file = Path(workdir) / "values.yaml"
        values_file.write_text(yaml.safe_dump(overrides))
        waiting = ["--wait", "--timeout", "120s"] if wait else []
        plane.helm(
            "install", release, str(chart), "-n", namespace, "-f", str(values_file), *waiting
        )
    prefix = release if "ingestion" in release else f"{release}-ingestion"
    account = plane.kubeconfig_for_service_account
    return InstalledChart(
        plane=plane,
        release=release,
        namespace=namespace,
        values=helm_chart.chart_values(overrides, chart=chart),
        operator_kubeconfig=account(namespace, f"{prefix}-operator"),
        api_kubeconfig=account(namespace, f"{prefix}-api"),
    )


def uninstall(chart: InstalledChart) -> None:
    """Clean-up after a test: kopf's finalizers off, then `helm uninstall --no-hooks`."""
    release_finalizers(chart.plane, chart.namespace)
    chart.helm("uninstall", chart.release, "--no-hooks", "--wait=false", check=False)


type InstallChart = Callable[..., InstalledChart]


@pytest.fixture
def install_chart(control_plane: ControlPlane, kube_namespace: str) -> Iterator[InstallChart]:
    """`install_chart(values=None, release="ingestion", wait=True, chart=CHART)`: the chart
    installed into this test's namespace (see install()); uninstalled afterwards."""
    installed: list[InstalledChart] = []

    def install_here(**kwargs: Any) -> InstalledChart:
        installed.append(install(control_plane, kube_namespace, **kwargs))
        return installed[-1]

    yield install_here
    for chart in installed:
        uninstall(chart)


@pytest.fixture
def installed_chart(install_chart: InstallChart) -> InstalledChart:
    """The chart installed with TEST_VALUES as release "ingestion", its Deployments available."""
    return install_chart()


@pytest.fixture(scope="module")
def module_chart(control_plane: ControlPlane) -> Iterator[InstalledChart]:
    """One install for a whole module, in a namespace of its own (for tests that only read
    it, or undo what they change): saves `helm install --wait` per test."""
    namespace = f"chart-{uuid.uuid4().hex[:8]}"
    control_plane.create_namespace(namespace)
    chart = install(control_plane, namespace)
    yield chart
    uninstall(chart)
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def release_finalizers(plane: ControlPlane, namespace: str) -> None:
    """Take kopf's finalizer off the namespace's rollouts, so that deleting the namespace
    never waits for an operator that is gone (what the chart's pre-delete hook does too)."""
    listed = plane.kubectl("get", "ingestionrollouts", "-n", namespace, "-o", "json", check=False)
    if listed.returncode != 0:
        return  # no CRD yet: nothing to release
    for item in json.loads(listed.stdout)["items"]:
        finalizers = item["metadata"].get("finalizers") or []
        if KOPF_FINALIZER in finalizers:
            kept = [f for f in finalizers if f != KOPF_FINALIZER]
            patch = json.dumps({"metadata": {"finalizers": kept or None}})
            plane.kubectl(
                "patch", "ingestionrollout", item["metadata"]["name"], "-n", namespace,
                "--type=merge", "-p", patch, check=False,
            )  # fmt: skip


class OperatorProcess:
    """The chart's operator as a process on this host (kwok runs no container), with the
    operator ServiceAccount's token: `python -m ingestion_operator`, configured as the
    chart's Deployment configures it, watching the release namespace."""

    def __init__(self, chart: InstalledChart, log: Path, timer_seconds: float = 1.0) -> None:
        self.log = log
        self.env = {
            **os.environ,
            "KUBECONFIG": str(chart.operator_kubeconfig),
            "OPERATOR_NAMESPACE": chart.namespace,
            "TIMER_INTERVAL_SECONDS": str(timer_seconds),
            "OPERATOR_BIND_ADDRESS": LOCALHOST,
            "OPERATOR_METRICS_PORT": str(free_port()),
            "OPERATOR_LIVENESS_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OperatorProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ingestion_operator"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; waits until the process is gone."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""

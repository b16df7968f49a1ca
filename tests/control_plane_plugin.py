"""Fixtures for tests against a real Kubernetes control plane (registered by conftest.py).

`control_plane` starts one ControlPlane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) for the whole session, on first request only: tests that do not
ask for it pay nothing. `kube_namespace` gives each test a fresh namespace on it, so tests
sharing the session's control plane cannot see each other's objects.

Binaries that are not built skip the tests with the build command; on CI (CI=true) they
fail them instead, as conftest.unavailable() does for every other local server.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
from ingestion_sandbox.servers.common import ServiceUnavailable
from ingestion_sandbox.servers.control_plane import ControlPlane


def unavailable(exc: ServiceUnavailable) -> None:
    """Skip the test, or fail it on CI, with the server's install hint (every fixture of a
    real server outside conftest.py calls this; conftest.unavailable is the same)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{exc} (CI=true: a missing server fails instead of skipping)", pytrace=False)
    pytest.skip(str(exc))


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A real control plane: `.kubeconfig` (admin), `.kubectl(...)`, `.helm(...)`, `.url`."""
    try:
        plane = ControlPlane()
    except ServiceUnavailable as exc:
        unavailable(exc)
        raise  # unreachable: skip/fail raise
    with plane:
        yield plane


def _namespace_name(test_name: str) -> str:
    """A DNS-1123 label naming the test, unique: test-<slug>-<random>."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"test-{slug[:40].rstrip('-')}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def kube_namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for the test; deleted afterwards (finalization not awaited)."""
    name = _namespace_name(request.node.name)
    control_plane.create_namespace(name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)

"""Session-wide fixtures: real local servers, started lazily by the tests that ask for them.

Each fixture starts its server on first request and stops it at the end of the
session. A missing binary or package skips the tests that need it, with the
exact install command; on CI (CI=true) it fails them instead, so a broken CI
image cannot turn into a green run of skipped tests.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingestion_sandbox.servers.control_plane import control_plane_bin_dir
from ingestion_sandbox.servers.services import (
    EmbeddingsServer,
    FalkorDBServer,
    KubeEmulator,
    PrometheusServer,
    S3Server,
    ServiceUnavailable,
    TemporalDevServer,
)

pytest_plugins = ["control_plane_plugin", "chart_plugin"]
KUBECTL_HINT = "build kubectl with the control plane: bash hack/control-plane/build.sh (needs Go)"

# kubectl and helm come from the project's control-plane build (the server's own version);
# every test and every process a test starts finds them first on PATH.
_CONTROL_PLANE_BIN = control_plane_bin_dir()
if (_CONTROL_PLANE_BIN / "kubectl").is_file():
    os.environ["PATH"] = f"{_CONTROL_PLANE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def unavailable(exc: ServiceUnavailable) -> None:
    """Skip the test, or fail it on CI, with the install hint."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{exc} (CI=true: a missing server fails instead of skipping)", pytrace=False)
    pytest.skip(str(exc))


type Server = (
    TemporalDevServer
    | FalkorDBServer
    | S3Server
    | PrometheusServer
    | EmbeddingsServer
    | KubeEmulator
)


def running[S: Server](factory: type[S]) -> Iterator[S]:
    """Start the server (skip/fail if it cannot exist here), yield it, stop it."""
    try:
        service = factory()
    except ServiceUnavailable as exc:
        unavailable(exc)
        raise  # unreachable: skip/fail raise
    with service:
        yield service


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[TemporalDevServer]:
    """`temporal server start-dev`; connect to `.address`, namespace `.namespace`."""
    yield from running(TemporalDevServer)


@pytest.fixture(scope="session")
def falkordb() -> Iterator[FalkorDBServer]:
    """FalkorDB speaking Bolt at `.bolt_uri` (neo4j driver, auth=None)."""
    yield from running(FalkorDBServer)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto S3 at `.endpoint_url` (region us-east-1, any keys); `.reset()` wipes it."""
    yield from running(S3Server)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    """Prometheus at `.url`; `.set_targets({...})` then `.wait_for_series(promql)`."""
    yield from running(PrometheusServer)


@pytest.fixture(scope="session")
def embeddings_server() -> Iterator[EmbeddingsServer]:
    """OpenAI-compatible embeddings at `.base_url`; shared, so call `.reset()` first."""
    yield from running(EmbeddingsServer)


@pytest.fixture(scope="session")
def kube_emulator() -> Iterator[KubeEmulator]:
    """Kubernetes API emulator at `.url`, built-in kinds loaded. Only the emulator's own
    tests use it (tests/integration/test_local_services.py): it is `make demo`'s fallback on
    a machine without the control-plane binaries; every other test runs on the real API
    server (control_plane_plugin.py)."""
    yield from running(KubeEmulator)


@pytest.fixture(scope="session")
def kubeconfig(kube_emulator: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig file pointing at the emulator (for kubectl, the kubernetes client, kopf)."""
    return kube_emulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of the kubectl binary."""
    path = shutil.which("kubectl")
    if path is None:
        unavailable(ServiceUnavailable("kubectl", KUBECTL_HINT))
        raise AssertionError("unreachable")
    return path


# Hard exit after pytest is done. The temporalio SDK (its Rust core) can segfault at
# interpreter exit in a process that talked to a server, which turns a green run
# into exit code 139. By the time pytest_unconfigure runs, every fixture is torn
# down (servers stopped) and every report is written (sessionfinish), so we flush
# and leave with os._exit and pytest's real exit status: 0 passed, 1 failures,
# 2 interrupted, 3 internal error, 4 usage error, 5 no tests collected.
# Set PYTEST_HARD_EXIT=0 to opt out (e.g. when calling pytest.main() in-process).
_session: pytest.Session | None = None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    global _session
    _session = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _session is None or os.environ.get("PYTEST_HARD_EXIT") == "0":
        return
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: its controller needs a clean exit
        return
    exit_status = int(_session.exitstatus)
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()  # would otherwise run in a cleanup we skip
    config.get_terminal_writer().flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_status)

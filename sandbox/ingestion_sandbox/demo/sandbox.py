"""Starting and stopping everything the demo runs, as one unit that cleans up after itself.

Servers come from ingestion_sandbox (Temporal dev server, FalkorDB speaking Bolt, moto
S3, Prometheus, and the local Kubernetes control plane with the chart installed, or the
API emulator without it: kube.py); the product's own processes (ingestion API, Temporal
workers, operator) run as children from their `python -m` entry points, configured only
through the environment (and, on the control plane, their ServiceAccounts' tokens), as
in a cluster. Everything binds 127.0.0.1
on free ports, everything is stopped in reverse order by one ExitStack whatever ends
the run (the end of the story, an error, Ctrl-C, SIGTERM), and every log lands in the
run directory, servers' included.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import boto3

from ingestion_sandbox.demo import cluster, kube
from ingestion_sandbox.demo.children import ChildProcess
from ingestion_sandbox.demo.cluster import Names
from ingestion_sandbox.demo.kubelet import Kubelet
from ingestion_sandbox.demo.options import DemoOptions
from ingestion_sandbox.demo.samples import Sample, build_samples, seed_bucket
from ingestion_sandbox.servers.common import (
    LOCALHOST,
    ProcessService,
    Service,
    free_port,
    port_open,
)
from ingestion_sandbox.servers.control_plane import ControlPlane
from ingestion_sandbox.servers.services import (
    FalkorDBServer,
    PrometheusServer,
    S3Server,
    TemporalDevServer,
    bolt_handshake_ok,
)

BUCKET = "documents"
TASK_QUEUE = "document-ingestion"
READY_TIMEOUT = 90.0
STOP_GRACE = 20.0
HEALTH_EVERY_SECONDS = 5.0


class ChildDied(RuntimeError):
    """A product process exited while the demo needed it."""


class Sandbox:
    """Call start(), then tick() often from the main thread; stop() always."""

    def __init__(
        self,
        options: DemoOptions,
        run_dir: Path,
        say: Callable[[str], None],
        kubectl_on_path: str | None = None,
    ) -> None:
        self.options = options
        self.kubectl_on_path = kubectl_on_path
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.stack = ExitStack()
        self.samples: list[Sample] = build_samples()
        self.api_port, self.operator_port = free_port(), free_port()
        self.worker_ports = [free_port() for _ in range(options.worker_cap)]
        self.fault_file = run_dir / "faults" / cluster.FAULT_KEY
        self.children: dict[str, ChildProcess] = {}
        self._next_health = 0.0
        self._bolt_misses = 0

    @property
    def api_url(self) -> str:
        return f"http://{LOCALHOST}:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (the printed kubectl commands use it)."""
        return self.kube.admin_kubeconfig

    @property
    def cluster(self) -> cluster.Cluster:
        return self.kube.cluster

    def start(self, names: Names) -> None:
        self._start_servers()
        self._prepare_cluster(names)
        self.kubelet = Kubelet(
            self.cluster, self.worker_ports, self._start_worker, self.fault_file, self.say
        )
        self.stack.callback(self.kubelet.stop_all, STOP_GRACE)
        api = self._child("api", "ingestion_api.main", self._api_env())
        operator = self._child("operator", "ingestion_operator", self._operator_env())
        self._wait_ready(api, operator)

    def stop(self) -> None:
        self.stack.close()

    def tick(self) -> None:
        """Kubelet work and a liveness check of the API, the operator and the servers."""
        self.kubelet.tick()
        for child in self.children.values():
            if not child.alive:
                raise ChildDied(
                    f"the {child.name} process exited with {child.returncode}; "
                    f"last lines of {child.log_path}:\n{child.tail(30)}"
                )
        if time.monotonic() >= self._next_health:
            self._next_health = time.monotonic() + HEALTH_EVERY_SECONDS
            self._check_servers()

    def _check_servers(self) -> None:
        for server in (self.temporal, self.falkordb, self.prometheus):
            if not server.running:
                raise ChildDied(f"the {server.name} server died; its log:\n{server.log_tail(25)}")
        if bolt_handshake_ok(self.falkordb.bolt_port, timeout=3.0):
            self._bolt_misses = 0
            return
        self._bolt_misses += 1
        if self._bolt_misses >= 2:
            raise ChildDied(
                f"FalkorDB (the local stand-in for Neo4j) stopped answering Bolt on port "
                f"{self.falkordb.bolt_port}; its log:\n{self.falkordb.log_tail(10)}"
            )

    def _start_servers(self) -> None:
        o = self.options
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
        targets = {
            "api": [f"{LOCALHOST}:{self.api_port}"],
            "workers": [f"{LOCALHOST}:{port}" for port in self.worker_ports],
            "operator": [f"{LOCALHOST}:{self.operator_port}"],
        }
        self.s3 = self._server(S3Server())
        self.falkordb = self._server(FalkorDBServer(keep_dir=True))
        self.temporal = self._server(TemporalDevServer(keep_dir=True))
        self.prometheus = self._server(
            PrometheusServer(scrape_interval=o.scrape_interval, targets=targets, keep_dir=True)
        )

    def _server[S: Service](self, server: S) -> S:
        began = time.monotonic()
        server.start()
        self.stack.callback(self._stop_server, server)
        self.say(f"  {server.name:<14} ready in {time.monotonic() - began:4.1f}s")
        return server

    def _stop_server(self, server: Service) -> None:
        if isinstance(server, ControlPlane) and server.dir is not None:
            logs = server.dir / "logs"  # the plane's temp dir goes with it: keep its logs
            if logs.is_dir():
                shutil.copytree(logs, self.logs / "control-plane", dirs_exist_ok=True)
        server.stop()
        if isinstance(server, ProcessService) and server.dir is not None:
            if server.log_path is not None and server.log_path.exists():
                shutil.copy(server.log_path, self.logs / f"{server.name}.log")
            shutil.rmtree(server.dir, ignore_errors=True)

    def _prepare_cluster(self, names: Names) -> None:
        s3 = boto3.client("s3", **self.s3.client_kwargs())
        seed_bucket(s3, BUCKET, self.samples)
        kinds = sorted({s.kind for s in self.samples})
        self.say(
            f"  seeded s3://{BUCKET}/samples/: {len(self.samples)} documents ({', '.join(kinds)})"
        )
        began = time.monotonic()
        values = kube.chart_values(
            names, self.options.min_workers, self.temporal.address, self.prometheus.url
        )
        self.kube = kube.start(
            self.options.kube, names, values, self.run_dir, self.say, self.kubectl_on_path
        )
        self.stack.callback(self._stop_server, self.kube.server)
        self.fault_file.parent.mkdir(exist_ok=True)
        self.say(f"  {self.kube.description}: ready in {time.monotonic() - began:4.1f}s")
        self.say(
            f"  Kubernetes: CRD ingestionrollouts, Deployment {names.deployment} "
            f"({self.options.min_workers} replicas), ConfigMaps {names.routing_configmap} (0%) "
            f"and {cluster.FAULT_CONFIGMAP}"
        )

    def _base_env(self) -> dict[str, str]:
        names = self.cluster.names
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "S3_ENDPOINT_URL": self.s3.endpoint_url,
            "DOCUMENTS_BUCKET": BUCKET,
            "ARTIFACT_BUCKET": "ingestion-artifacts",
            "NEO4J_URI": self.falkordb.bolt_uri,
            "NEO4J_MAX_MESSAGE_BYTES": "4000",  # FalkorDB's Bolt port crashes past 4 KiB
            "NEO4J_CONNECTION_TIMEOUT_SECONDS": "2",
            "OPENAI_API_KEY": "",  # the offline embedder: no network needed
            # The offline embedder is lexical anyway; 64 floats keep a chunk under FalkorDB's
            # 4 KiB Bolt bound (256 would split every chunk into several requests).
            "EMBEDDING_DIMENSIONS": "64",
            "TEMPORAL_ADDRESS": self.temporal.address,
            "TEMPORAL_TASK_QUEUE": TASK_QUEUE,
            "ROUTING_CONFIGMAP": names.routing_configmap,
            "ROUTING_KEY": names.routing_key,
            "ROUTING_NAMESPACE": cluster.NAMESPACE,
        }

    def _api_env(self) -> dict[str, str]:
        return {
            **self._base_env(),
            "KUBECONFIG": str(self.kube.api_kubeconfig),  # the chart's API ServiceAccount
            "API_HOST": LOCALHOST,
            "API_PORT": str(self.api_port),
        }

    def _operator_env(self) -> dict[str, str]:
        return {
            **self._base_env(),
            "KUBECONFIG": str(self.kube.operator_kubeconfig),  # the chart's operator account
            "TIMER_INTERVAL_SECONDS": str(self.options.timer_seconds),
            "OPERATOR_METRICS_PORT": str(self.operator_port),
            "OPERATOR_LIVENESS_PORT": "0",
            "OPERATOR_BIND_ADDRESS": LOCALHOST,
            "OPERATOR_NAMESPACE": cluster.NAMESPACE,
        }

    def _worker_env(self, metrics_port: int) -> dict[str, str]:
        return {
            **self._base_env(),
            "METRICS_HOST": LOCALHOST,
            "METRICS_PORT": str(metrics_port),
            "FAULT_FILE": str(self.fault_file),
            "GRACEFUL_SHUTDOWN_SECONDS": "10",
            "BACKLOG_REFRESH_SECONDS": "1",
        }

    def _child(self, name: str, module: str, env: dict[str, str]) -> ChildProcess:
        child = self._spawn(name, module, env, self.logs / f"{name}.log")
        self.children[name] = child
        self.stack.callback(child.stop, STOP_GRACE)
        return child

    def _spawn(self, name: str, module: str, env: dict[str, str], log: Path) -> ChildProcess:
        command = [sys.executable, "-m", module]
        return ChildProcess(name, command, env, log, self.run_dir).start()

    def _start_worker(self, slot: int, port: int, generation: int) -> ChildProcess:
        log = self.logs / f"worker-{slot}.log"
        if generation > 1:
            with open(log, "a") as file:
                file.write(f"\n--- worker {slot}, process {generation} ---\n")
        return self._spawn(f"worker-{slot}", "ingestion_worker.worker", self._worker_env(port), log)

    def _wait_ready(self, api: ChildProcess, operator: ChildProcess) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = {"api": self._api_ready, "operator": lambda: port_open(self.operator_port)}
        pending["workers"] = lambda: self.kubelet.ready >= self.options.min_workers
        while pending:
            self.tick()
            for name, ready in list(pending.items()):
                if ready():
                    self.say(f"  {name:<14} ready")
                    del pending[name]
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {READY_TIMEOUT:.0f}s: {', '.join(pending)}")
            time.sleep(0.2)

    def _api_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

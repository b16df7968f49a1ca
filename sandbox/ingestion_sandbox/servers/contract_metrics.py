"""Synthetic traffic on the metric contract, for exercising the operator's analysis.

The operator judges four rules from the router's and workers' metrics
(ingestion_documents_total, ingestion_duration_seconds, temporal_task_queue_backlog,
ingestion_db_connection_errors_total; their names are ingestion_contract.metrics). Running the real
pipeline at 40 documents a second is more than two shared cores can do, and it would
blur what an operator test or benchmark measures. This exporter serves exactly those
series on a port of its own, at a steady rate whose health the caller switches at
run time, and remembers when the first failing document was counted: the start of
the clock for "first failure -> traffic back on legacy".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ingestion_contract import metrics as contract
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ingestion_sandbox.servers.common import LOCALHOST, free_port

TICK_SECONDS = 0.05


@dataclass
class ContractTraffic:
    """Documents per second on each path, with Temporal failures switched on at will.

    `failing` makes every Temporal document fail (the share of legacy stays healthy);
    `first_failure_at` is the time.monotonic() of the first failure counted after it
    was switched on. Latencies are observed as `latency_seconds` on both paths.
    """

    job: str
    per_second: float = 10.0
    latency_seconds: float = 0.1
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    port: int = 0
    first_failure_at: float | None = None
    _failing: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        reg = self.registry
        self.documents = Counter(
            contract.DOCUMENTS_TOTAL,
            "Documents by path/outcome",
            [contract.PATH_LABEL, contract.OUTCOME_LABEL],
            registry=reg,
        )
        self.duration = Histogram(
            contract.DURATION_SECONDS, "Document latency", [contract.PATH_LABEL], registry=reg
        )
        self.backlog = Gauge(contract.TASK_QUEUE_BACKLOG, "Task-queue backlog", registry=reg)
        self.db_errors = Counter(
            contract.DB_CONNECTION_ERRORS_TOTAL, "Graph connection errors", registry=reg
        )
        for path in contract.PATHS:
            for outcome in contract.OUTCOMES:
                self.documents.labels(path, outcome)

    @property
    def failing(self) -> bool:
        return self._failing.is_set()

    def fail(self, on: bool = True) -> None:
        """Switch Temporal failures on (resetting the first-failure clock) or off."""
        if on:
            self.first_failure_at = None
            self._failing.set()
        else:
            self._failing.clear()

    def start(self) -> ContractTraffic:
        """Serve /metrics on 127.0.0.1 (a free port unless one was given) and feed it."""
        self.port = self.port or free_port()
        self._server, _ = start_http_server(self.port, addr=LOCALHOST, registry=self.registry)
        self._thread = threading.Thread(target=self._feed, name="contract-traffic", daemon=True)
        self._thread.start()
        return self

    @property
    def target(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.shutdown()

    def _feed(self) -> None:
        """Whole documents at a steady average rate (carry the fractions between ticks)."""
        owed = 0.0
        while not self._stop.wait(TICK_SECONDS):
            owed += self.per_second * TICK_SECONDS
            count, owed = int(owed), owed - int(owed)
            for _ in range(count):
                self._one_document()

    def _one_document(self) -> None:
        self.documents.labels(contract.PATH_LEGACY, contract.OUTCOME_SUCCESS).inc()
        self.duration.labels(contract.PATH_LEGACY).observe(self.latency_seconds)
        if self._failing.is_set():
            self.documents.labels(contract.PATH_TEMPORAL, contract.OUTCOME_FAILURE).inc()
            if self.first_failure_at is None:
                self.first_failure_at = time.monotonic()
        else:
            self.documents.labels(contract.PATH_TEMPORAL, contract.OUTCOME_SUCCESS).inc()
        self.duration.labels(contract.PATH_TEMPORAL).observe(self.latency_seconds)

"""What every operator scenario stands on: the real operator process, on the real control
plane (tests/operator_harness.py: a namespace per module, the chart's RBAC, the operator's
ServiceAccount token), and contract metrics a real Prometheus scrapes.

Why a process and not handler calls: what can break between the pure decisions and a
cluster is the glue (kopf registration, credentials, RBAC, merge patches, the scale
subresource, status subresource writes, Events, watches). Only the real process against
the real API server exercises it.

The traffic is ingestion_sandbox.servers.contract_metrics: the metric contract served on a
port of its own, healthy and with equal latencies on both paths until a scenario
switches Temporal failures on. Prometheus is shared by the session, so each module's
rollouts query only their own scrape job (spec.analysis.metricLabels), and each
module's operator watches only its own namespace. Timings are generous and only ever
polled: nothing asserts speed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ingestion_sandbox.servers.contract_metrics import ContractTraffic as Traffic
from ingestion_sandbox.servers.control_plane import ControlPlane
from operator_harness import (
    TIMEOUT,
    Cluster,
    OperatorProcess,
    install_crd,
    operator_cluster,
    rollout_body,
    running_operator,
)

WINDOW = "10s"
MAX_REPLICAS = 3


@pytest.fixture(scope="module")
def traffic(prometheus: Any) -> Iterator[Traffic]:
    """Healthy traffic exported on a port of its own and scraped by the shared Prometheus."""
    feed = Traffic(job=f"operator-{uuid.uuid4().hex[:8]}", per_second=20).start()
    prometheus.set_targets({feed.job: [feed.target]}, scrape_interval="500ms")
    prometheus.wait_for_series(
        f'increase(ingestion_documents_total{{job="{feed.job}",path="temporal"}}[{WINDOW}]) > 0',
        timeout=TIMEOUT,
    )
    yield feed
    feed.stop()


@pytest.fixture(scope="session")
def rollout_crd(control_plane: ControlPlane) -> None:
    """The CRD, installed by the real API server (schema, CEL rules, status subresource)."""
    install_crd(control_plane)


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane, rollout_crd: None) -> Iterator[Cluster]:
    """A fresh namespace per test module with the chart's operator RBAC in it."""
    with operator_cluster(control_plane) as made:
        yield made


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The running operator for this module's namespace, with its ServiceAccount's token."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(cluster, log) as process:
        yield process


def body(name: str, traffic: Traffic, prometheus_url: str, **spec: Any) -> dict[str, Any]:
    """A fast rollout (2 s steps, 1 s analysis over 10 s) reading this module's traffic."""
    return rollout_body(name, traffic.job, prometheus_url, window=WINDOW, **spec)


def own_targets(cluster: Cluster, **spec: Any) -> dict[str, Any]:
    """Seed a worker Deployment and a routing ConfigMap from the pool the chart's RBAC
    grants; the spec fields naming them (read them back with `routing` and `worker`)."""
    deployment, configmap = cluster.seed_targets()
    return {
        "routing": {"configMapName": configmap},
        "workers": [{"deploymentName": deployment, "minReplicas": 1, "maxReplicas": MAX_REPLICAS}],
        **spec,
    }


def routing(spec: dict[str, Any]) -> str:
    return str(spec["routing"]["configMapName"])


def worker(spec: dict[str, Any]) -> str:
    return str(spec["workers"][0]["deploymentName"])

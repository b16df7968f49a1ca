"""The main story, end to end in the real operator process: a healthy rollout walks
10 -> 50 -> 100 -> Completed with workers scaled at each step; a breach at 50% rolls
back to 0% with an Event that names the metric; the process serves /metrics and
/healthz while it works. (Fixtures and why a process: conftest.py.)
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from conftest import (
    MAX_REPLICAS,
    Cluster,
    OperatorProcess,
    Traffic,
    own_targets,
    poll,
    rollout_body,
)


def test_healthy_rollout_completes(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given healthy traffic and a rollout over the default target names
    traffic.fail(False)
    name = f"healthy-{uuid.uuid4().hex[:6]}"
    cluster.seed_targets("ingestion-temporal-worker", "ingestion-routing")
    # when it is applied
    cluster.create(rollout_body(name, traffic, prometheus.url))
    # then it completes at 100% with the workers scaled to their maximum
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "done")
    assert status["currentPercentage"] == 100
    assert status["stepLabel"] == "3/3"
    assert status["lastAnalysis"]["verdict"] in ("Pass", "Inconclusive")
    assert [h["toPercentage"] for h in status["history"]] == [10, 50, 100, 100]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Progressing": "False", "Completed": "True", "RolledBack": "False"}
    assert cluster.percentage("ingestion-routing") == "100"
    assert cluster.replicas("ingestion-temporal-worker") == MAX_REPLICAS
    reasons = poll(
        lambda: set(cluster.reasons(name)),
        lambda r: {"StepAdvanced", "RolloutCompleted"} <= r,
        "events",
    )
    assert "RolledBack" not in reasons


def test_breach_rolls_back(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout held at 50% (a long hold for that step)
    traffic.fail(False)
    name = f"breach-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, name, stepOverrides=[{"step": 50, "duration": "10m"}])
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 50, "50%")
    assert cluster.percentage(f"{name}-routing") == "50"
    assert cluster.replicas(f"{name}-worker") == math.ceil(MAX_REPLICAS * 50 / 100)
    # when the Temporal path starts failing most documents
    traffic.fail()
    try:
        status = poll(
            lambda: cluster.status(name), lambda s: s.get("phase") == "RolledBack", "RolledBack"
        )
    finally:
        traffic.fail(False)
    # then traffic is back on legacy and the Event names the metric
    assert status["currentPercentage"] == 0
    assert cluster.percentage(f"{name}-routing") == "0"
    warnings = poll(
        lambda: [e for e in cluster.events(name) if e["reason"] == "RolledBack"],
        bool,
        "a RolledBack event",
    )
    assert warnings[0]["type"] == "Warning"
    assert "errorRate" in warnings[0]["message"]
    # and, the backlog gauge being 0, the workers are drained back to minReplicas
    poll(lambda: cluster.replicas(f"{name}-worker"), lambda r: r == 1, "replicas back to 1")


def test_serves_metrics_and_liveness(cluster: Cluster, operator: OperatorProcess) -> None:
    # given the operator has reconciled at least one rollout (the tests above)
    # when its endpoints are read
    code, _ = poll(
        lambda: operator.get(operator.liveness_url),
        lambda r: '"lastReconcileAt"' in r[1] and "null" not in r[1],
        "a liveness answer with a reconcile time",
    )
    _, metrics = operator.get(operator.metrics_url)
    # then both answer, with the rollouts' gauges in the metrics
    assert code == 200
    for gauge in ("ingestionrollout_percentage", "ingestionrollout_phase"):
        assert re.search(gauge + r'\{name="[^"]+",namespace="' + cluster.namespace, metrics)
    assert "ingestionrollout_rollbacks_total 1.0" in metrics

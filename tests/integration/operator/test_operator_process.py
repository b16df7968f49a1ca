"""The main story, end to end in the real operator process on the real control plane: a
healthy rollout walks 10 -> 50 -> 100 -> Completed with workers scaled (and available)
at each step; a breach at 50% rolls back to 0% with an Event that names the metric; the
process serves /metrics and /healthz while it works. (Fixtures and why: conftest.py.)
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from conftest import MAX_REPLICAS, Traffic, own_targets, routing, worker
from conftest import body as rollout_body
from operator_harness import Cluster, OperatorProcess, poll


def test_healthy_rollout_completes(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given healthy traffic, and a rollout naming no target: it drives the routing ConfigMap
    # and the worker Deployment the chart installed (the CRD's default names)
    traffic.fail(False)
    name = f"healthy-{uuid.uuid4().hex[:6]}"
    # when it is applied
    cluster.create(rollout_body(name, traffic, prometheus.url))
    # then it completes at 100% with the workers scaled to their maximum
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "done")
    assert status["currentPercentage"] == 100
    assert status["observedGeneration"] == cluster.rollout(name)["metadata"]["generation"]
    assert status["stepLabel"] == "3/3"
    assert status["lastAnalysis"]["verdict"] in ("Pass", "Inconclusive")
    assert [h["toPercentage"] for h in status["history"]] == [10, 50, 100, 100]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Progressing": "False", "Completed": "True", "RolledBack": "False"}
    assert cluster.percentage("ingestion-routing") == "100"
    assert cluster.replicas("ingestion-temporal-worker") == 10  # the CRD's default maxReplicas
    assert cluster.available("ingestion-temporal-worker") == 10  # waited for before 100%
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
    spec = own_targets(cluster, stepOverrides=[{"step": 50, "duration": "10m"}])
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 50, "50%")
    assert cluster.percentage(routing(spec)) == "50"
    assert cluster.replicas(worker(spec)) == math.ceil(MAX_REPLICAS * 50 / 100)
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
    assert cluster.percentage(routing(spec)) == "0"
    warnings = poll(
        lambda: [e for e in cluster.events(name) if e["reason"] == "RolledBack"],
        bool,
        "a RolledBack event",
    )
    assert warnings[0]["type"] == "Warning"
    assert "errorRate" in warnings[0]["message"]
    # and, the backlog gauge being 0, the workers are drained back to minReplicas
    poll(lambda: cluster.replicas(worker(spec)), lambda r: r == 1, "replicas back to 1")


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
    # and every status it wrote is what the API server stored (a null in a merge patch is a
    # removal, so the server dropped it and kopf warned at every analysis without data)
    assert "inconsistencies: (('change', ('status'" not in operator.logged()


def test_the_sequential_judge_promotes_on_proof_and_rolls_back_with_its_bounds(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout judged sequentially (p95: a p99 bound needs >= 632 documents), held at 50%
    traffic.fail(False)
    name = f"sequential-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, stepOverrides=[{"step": 50, "duration": "10m"}])
    body = rollout_body(name, traffic, prometheus.url, **spec)
    body["spec"]["analysis"] |= {"judge": "sequential", "thresholds": {"latencyQuantile": 0.95}}
    cluster.create(body)
    # then 10% advances once its evidence proves both sampled rules healthy
    status = poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 50, "50%")
    assert [(h["toPercentage"], h["reason"]) for h in status["history"]] == [
        (10, "Started"),
        (50, "StepAdvanced"),
    ]
    evidence = poll(
        lambda: cluster.status(name)["lastAnalysis"]["metrics"][0],
        lambda m: m.get("documents", 0) > 0,
        "evidence counted in the 50% step",
    )
    assert evidence["name"] == "errorRate" and evidence["lower"] == 0
    # when every Temporal document fails
    traffic.fail()
    try:
        poll(lambda: cluster.status(name), lambda s: s.get("phase") == "RolledBack", "rollback")
    finally:
        traffic.fail(False)
    # then the Event states the estimate, its interval and the documents behind it
    [event] = [e for e in cluster.events(name) if e["reason"] == "RolledBack"]
    assert re.fullmatch(
        r"error rate \S+ \[\S+, \S+\] after \d+ documents > 0\.05; routing 50% -> 0%",
        event["message"],
    ), event["message"]

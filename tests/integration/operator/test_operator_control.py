"""Manual control and bad input, through the real operator process: the promote, abort
and retry annotations; spec.paused; lowering the target mid-rollout; an invalid
manifest and a missing reference ending in phase Failed with a clear message, and
the operator picking the rollout up again by itself once the cause is fixed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from conftest import GROUP, Cluster, OperatorProcess, Traffic, own_targets, poll, rollout_body


def at(percentage: int) -> Any:
    return lambda s: s.get("currentPercentage") == percentage and s.get("phase") == "Progressing"


def test_promote_abort_retry_annotations(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout that would hold each step for an hour
    traffic.fail(False)
    name = f"manual-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, name, stepDuration="1h")
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    poll(lambda: cluster.status(name), at(10), "10%")
    # when promoted, it moves on at once, and the annotation is consumed
    cluster.annotate(name, "promote")
    poll(lambda: cluster.status(name), at(50), "50% after promote")
    assert cluster.percentage(f"{name}-routing") == "50"
    annotations = cluster.rollout(name)["metadata"].get("annotations") or {}
    assert f"{GROUP}/promote" not in annotations
    promoted = [e for e in cluster.events(name) if e["reason"] == "StepAdvanced"]
    assert promoted[-1]["message"] == "10% -> 50% (promoted)"
    # when aborted, traffic goes back to legacy
    cluster.annotate(name, "abort")
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "RolledBack", "abort")
    assert status["currentPercentage"] == 0
    assert cluster.percentage(f"{name}-routing") == "0"
    assert "aborted by annotation" in status["message"]
    # when retried, it starts again from the first step
    cluster.annotate(name, "retry")
    poll(lambda: cluster.status(name), at(10), "10% after retry")
    assert cluster.percentage(f"{name}-routing") == "10"
    assert "Retry" in cluster.reasons(name)


def test_paused_holds_then_resumes(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a fast rollout created paused
    traffic.fail(False)
    name = f"paused-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, name, paused=True)
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    # then it takes its first step and holds there, well past the 2 s step duration
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Paused", "Paused")
    time.sleep(5)
    assert cluster.status(name)["currentPercentage"] == status["currentPercentage"] == 10
    assert cluster.percentage(f"{name}-routing") == "10"
    # when unpaused, it carries on to the end
    cluster.patch(name, {"spec": {"paused": False}})
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")


def test_lowering_the_target_moves_traffic_down_at_once(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout completed at 100%
    traffic.fail(False)
    name = f"lower-{uuid.uuid4().hex[:6]}"
    cluster.create(rollout_body(name, traffic, prometheus.url, **own_targets(cluster, name)))
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")
    # when the target is lowered to 30%
    cluster.patch(name, {"spec": {"targetPercentage": 30}})
    # then routing drops to 30% without waiting for analysis or a step duration
    status = poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 30, "30")
    assert cluster.percentage(f"{name}-routing") == "30"
    assert status["observedGeneration"] == cluster.rollout(name)["metadata"]["generation"]
    assert "StepDown" in cluster.reasons(name)


def test_invalid_manifest_fails_clearly_and_recovers_when_fixed(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a manifest the API server's admission would reject (steps not increasing);
    # the emulator stores it, so the operator's own validation must catch it
    traffic.fail(False)
    name = f"invalid-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, name, steps=[50, 10])
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    # then it is Failed with the rule named, and nothing was routed
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Failed", "Failed")
    assert status["reason"] == "InvalidSpec"
    assert "invalid spec" in status["message"] and "steps" in status["message"]
    assert cluster.percentage(f"{name}-routing") == "0"
    assert "InvalidSpec" in cluster.reasons(name)
    # when the spec is fixed, the rollout starts by itself
    cluster.patch(name, {"spec": {"steps": [10, 50]}})
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") != "Failed", "recovery")
    assert "reason" not in status
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")


def test_missing_deployment_fails_clearly_and_recovers_when_created(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout naming a worker Deployment that does not exist
    traffic.fail(False)
    name = f"missing-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, name)
    spec["workers"] = [{"deploymentName": f"{name}-absent", "maxReplicas": 4}]
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    # then it is Failed with a message naming the Deployment, and no traffic moved
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Failed", "Failed")
    assert status["reason"] == "MissingReference"
    assert f"Deployment {cluster.namespace}/{name}-absent not found" in status["message"]
    assert cluster.percentage(f"{name}-routing") == "0"
    # when the Deployment appears, the rollout starts without being told
    cluster.seed_deployment(f"{name}-absent")
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")
    assert cluster.replicas(f"{name}-absent") == 4

"""Manual control and bad input, through the real operator process on the real control
plane: the promote, abort and retry annotations; spec.paused; lowering the target
mid-rollout (a new generation, observed); an invalid manifest refused by the API server's
admission before the operator sees it; a missing reference ending in phase Failed with a
clear message, and the operator picking the rollout up again once the cause is fixed.
(A malformed object that only a schema-less CRD admits: tests/faults/test_operator_faults.py.)
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import operator_harness
import pytest
from conftest import Traffic, own_targets, routing
from conftest import body as rollout_body
from ingestion_contract.crd import GROUP
from ingestion_sandbox.servers.control_plane_components import CommandError
from operator_harness import Cluster, OperatorProcess, manifest, poll


def at(percentage: int) -> Any:
    return lambda s: s.get("currentPercentage") == percentage and s.get("phase") == "Progressing"


def test_promote_abort_retry_annotations(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout that would hold each step for an hour
    traffic.fail(False)
    name = f"manual-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, stepDuration="1h")
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    poll(lambda: cluster.status(name), at(10), "10%")
    # when promoted, it moves on at once, and the annotation is consumed
    cluster.annotate(name, "promote")
    poll(lambda: cluster.status(name), at(50), "50% after promote")
    assert cluster.percentage(routing(spec)) == "50"
    annotations = cluster.rollout(name)["metadata"].get("annotations") or {}
    assert f"{GROUP}/promote" not in annotations
    promoted = [e for e in cluster.events(name) if e["reason"] == "StepAdvanced"]
    assert promoted[-1]["message"] == "10% -> 50% (promoted)"
    # when aborted, traffic goes back to legacy
    cluster.annotate(name, "abort")
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "RolledBack", "abort")
    assert status["currentPercentage"] == 0
    assert cluster.percentage(routing(spec)) == "0"
    assert "aborted by annotation" in status["message"]
    # when retried, it starts again from the first step
    cluster.annotate(name, "retry")
    poll(lambda: cluster.status(name), at(10), "10% after retry")
    assert cluster.percentage(routing(spec)) == "10"
    assert "Retry" in cluster.reasons(name)


def test_paused_holds_then_resumes(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a fast rollout created paused
    traffic.fail(False)
    name = f"paused-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster, paused=True)
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    # then it takes its first step and holds there, well past the 2 s step duration
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Paused", "Paused")
    time.sleep(5)
    assert cluster.status(name)["currentPercentage"] == status["currentPercentage"] == 10
    assert cluster.percentage(routing(spec)) == "10"
    # when unpaused, it carries on to the end
    cluster.patch(name, {"spec": {"paused": False}})
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")


def test_lowering_the_target_moves_traffic_down_at_once(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout completed at 100%
    traffic.fail(False)
    name = f"lower-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster)
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")
    # when the target is lowered to 30%
    cluster.patch(name, {"spec": {"targetPercentage": 30}})
    # then routing drops to 30% without waiting for analysis or a step duration
    status = poll(lambda: cluster.status(name), lambda s: s.get("currentPercentage") == 30, "30")
    assert cluster.percentage(routing(spec)) == "30"
    assert status["observedGeneration"] == cluster.rollout(name)["metadata"]["generation"]
    assert "StepDown" in cluster.reasons(name)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"steps": [50, 10]}, "steps must be strictly increasing"),
        ({"analysis": {"counterWindow": "20s"}}, "counterWindow must be at least 1m"),
        ({"stepOverrides": [{"step": 50}]}, "sets duration, minHealthyDuration or both"),
    ],
)
def test_an_invalid_manifest_is_refused_by_kubectl_apply_and_never_reaches_the_operator(
    cluster: Cluster, operator: OperatorProcess, change: dict[str, Any], refusal: str
) -> None:
    # given a manifest that breaks one of the CRD's rules
    name = f"invalid-{uuid.uuid4().hex[:6]}"
    body = operator_harness.rollout_body(name, "unused", "http://127.0.0.1:9", **change)
    body["metadata"]["namespace"] = cluster.namespace
    # when it is applied with kubectl, then the API server refuses it with the rule's message
    with pytest.raises(CommandError) as refused:
        cluster.plane.kubectl("apply", "-f", "-", input=manifest(body))
    assert refusal in refused.value.stderr
    # and there is no such rollout for the operator to act on
    listed = cluster.plane.kubectl("get", "ir", "-n", cluster.namespace, "-o", "name")
    assert name not in listed.stdout


def test_missing_deployment_fails_clearly_and_recovers_when_created(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a rollout naming a worker Deployment that does not exist
    traffic.fail(False)
    name = f"missing-{uuid.uuid4().hex[:6]}"
    spec = own_targets(cluster)
    absent, _ = cluster.take()  # a name the chart's RBAC grants, with no Deployment
    spec["workers"] = [{"deploymentName": absent, "maxReplicas": 4}]
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    # then it is Failed with a message naming the Deployment, and no traffic moved
    status = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Failed", "Failed")
    assert status["reason"] == "MissingReference"
    assert f"Deployment {cluster.namespace}/{absent} not found" in status["message"]
    assert cluster.percentage(routing(spec)) == "0"
    assert "MissingReference" in cluster.reasons(name)
    # when the Deployment appears, the rollout starts without being told
    cluster.seed_deployment(absent)
    poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "Completed")
    assert cluster.replicas(absent) == 4


def test_kubectl_explain_documents_the_new_fields(cluster: Cluster) -> None:
    # given the CRD installed on the real API server, when a user asks kubectl to explain
    explained = {
        field: " ".join(
            cluster.plane.kubectl("explain", f"ingestionrollout.spec.{field}").stdout.split()
        )
        for field in (
            "analysis.thresholds.minLatencyDeltaSeconds",
            "analysis.judge",
            "minHealthyDuration",
            "workersReadyTimeout",
            "analysis.optionalRules",
        )
    }
    # then each field's description is there, from the CRD's schema
    assert "Latency floor" in explained["analysis.thresholds.minLatencyDeltaSeconds"]
    assert "sequential" in explained["analysis.judge"]
    assert "continuous passing analysis" in explained["minHealthyDuration"]
    assert "availableReplicas" in explained["workersReadyTimeout"]
    assert "pre" in explained["analysis.optionalRules"].lower()

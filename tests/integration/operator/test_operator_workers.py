"""Workers before traffic, on the real control plane: the operator scales the worker
Deployment through its scale subresource and raises traffic only once the Deployment
reports the replicas the new percentage needs as available; Pods that cannot be
scheduled hold the rollout where it is, past spec.workersReadyTimeout it pauses and says
why, and it moves on by itself once the Pods run.
"""

from __future__ import annotations

import uuid
from typing import Any

from conftest import Traffic
from conftest import body as rollout_body
from operator_harness import Cluster, OperatorProcess, poll

UNSCHEDULABLE = {"apex.test/no-such-node": "true"}  # no Node has this label


def test_traffic_waits_for_available_workers_then_moves_on(
    cluster: Cluster, operator: OperatorProcess, traffic: Traffic, prometheus: Any
) -> None:
    # given a worker Deployment whose Pods cannot be scheduled, and a 3 s readiness timeout
    traffic.fail(False)
    name = f"workers-{uuid.uuid4().hex[:6]}"
    deployment, configmap = cluster.seed_targets(node_selector=UNSCHEDULABLE)
    spec = {
        "routing": {"configMapName": configmap},
        "workers": [{"deploymentName": deployment, "minReplicas": 1, "maxReplicas": 2}],
        "workersReadyTimeout": "3s",
    }
    # when the rollout is applied
    cluster.create(rollout_body(name, traffic, prometheus.url, **spec))
    # then it waits at 0%, then pauses, naming the Deployment and what is available
    paused = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Paused", "Paused")
    assert paused["reason"] == "WorkersNotReady"
    assert f"{deployment} 0/1 available" in paused["message"]
    assert paused["currentPercentage"] == 0 and cluster.percentage(configmap) == "0"
    warning = poll(
        lambda: [e for e in cluster.events(name) if e["reason"] == "WorkersNotReady"],
        bool,
        "a WorkersNotReady event",
    )
    assert warning[0]["type"] == "Warning" and deployment in warning[0]["message"]
    # when the Pods can run (the Deployment's template no longer asks for a missing node)
    unpin = [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]
    cluster.apps.patch_namespaced_deployment(deployment, cluster.namespace, unpin)
    # then the rollout moves on by itself and completes, each raise after its workers
    done = poll(lambda: cluster.status(name), lambda s: s.get("phase") == "Completed", "done")
    assert "reason" not in done and "workersWaitingSince" not in done
    assert cluster.percentage(configmap) == "100"
    assert cluster.replicas(deployment) == 2 and cluster.available(deployment) == 2
    assert [(h["toPercentage"], h["phase"]) for h in done["history"]][:2] == [
        (0, "Paused"),
        (10, "Progressing"),
    ]

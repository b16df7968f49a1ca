"""The sandbox's control plane: the Kubernetes API emulator set up as a cluster would be.

What a cluster with the product installed would hold before the rollout is applied:
the IngestionRollout CRD, the Temporal worker Deployment, the routing ConfigMap at 0%
and the fault ConfigMap that the workers mount as FAULT_FILE. This module seeds them
and reads and writes them the way the demo needs (over HTTP, like every other client,
except for reads of single objects, which go straight to the in-process emulator).
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from ingestion_contract.crd import GROUP, PLURAL, VERSION
from ingestion_contract.routing import RoutingConfigError, format_percentage, parse_percentage

from ingestion_sandbox.servers.kube_emulator import KubeEmulator

ROLLOUTS = f"{GROUP}/{VERSION}/{PLURAL}"
NAMESPACE = "default"
FAULT_CONFIGMAP = "ingestion-faults"
FAULT_KEY = "fault.json"


@dataclass(frozen=True)
class Names:
    """Object names, taken from the applied rollout (so the example decides them)."""

    rollout: str
    deployment: str
    routing_configmap: str
    routing_key: str


def register_crd(kube: KubeEmulator) -> None:
    """What `kubectl apply -f crds/ingestionrollouts.yaml` does on a real API server."""
    kube.register_rollout_crd()


def seed(kube: KubeEmulator, names: Names, replicas: int) -> None:
    labels = {"app": names.deployment}
    kube.seed(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": names.deployment, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "worker", "image": "ingestion-worker"}]},
                },
            },
        }
    )
    kube.seed(configmap(names.routing_configmap, {names.routing_key: format_percentage(0)}))
    kube.seed(configmap(FAULT_CONFIGMAP, {FAULT_KEY: fault_json(0.0, 0.0)}))


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": data,
    }


def fault_json(failure_rate: float, delay_seconds: float) -> str:
    return json.dumps({"failureRate": failure_rate, "delaySeconds": delay_seconds})


class Cluster:
    """Reads and writes of the demo's objects."""

    def __init__(self, kube: KubeEmulator, names: Names) -> None:
        self.kube = kube
        self.names = names

    def weight(self) -> int | None:
        """The routing ConfigMap's percentage (None if absent or malformed)."""
        obj = self.kube.get("v1/configmaps", NAMESPACE, self.names.routing_configmap)
        try:
            return parse_percentage((obj or {})["data"][self.names.routing_key])
        except (KeyError, TypeError, RoutingConfigError):
            return None

    def rollout(self) -> dict[str, Any] | None:
        return self.kube.get(ROLLOUTS, NAMESPACE, self.names.rollout)

    def wanted_replicas(self) -> int:
        obj = self.kube.get("apps/v1/deployments", NAMESPACE, self.names.deployment)
        return int(((obj or {}).get("spec") or {}).get("replicas") or 0)

    def fault_text(self) -> str | None:
        obj = self.kube.get("v1/configmaps", NAMESPACE, FAULT_CONFIGMAP)
        return ((obj or {}).get("data") or {}).get(FAULT_KEY)

    def events(self) -> list[dict[str, Any]]:
        """Events about the rollout, oldest first (as `kubectl get events` would list them)."""
        items = self._request("GET", f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
        mine = [
            e for e in items if (e.get("involvedObject") or {}).get("name") == self.names.rollout
        ]
        return sorted(mine, key=lambda e: int(e["metadata"].get("resourceVersion") or 0))

    def set_deployment_status(self, replicas: int, ready: int) -> None:
        """What the Deployment controller reports; the emulator has no controllers."""
        path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{self.names.deployment}/status"
        status = {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready}
        self._request("PATCH", path, {"status": status})

    def patch_configmap(self, name: str, data: dict[str, str]) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}"
        self._request("PATCH", path, {"data": data})

    def annotate_rollout(self, key: str, value: str) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/{self.names.rollout}"
        self._request("PATCH", path, {"metadata": {"annotations": {key: value}}})

    def create_rollout(self, body: dict[str, Any]) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
        self._request("POST", path, body)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        request = urllib.request.Request(
            self.kube.url + path, data=data, method=method, headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

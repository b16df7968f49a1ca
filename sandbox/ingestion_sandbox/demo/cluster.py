"""The demo's objects in its Kubernetes API, read and written the way the demo needs.

What a cluster with the product installed holds before the rollout is applied: the
IngestionRollout CRD, the Temporal worker Deployment, the routing ConfigMap at 0% and the
fault ConfigMap that the workers mount as FAULT_FILE. kube.py puts them there (with `helm
install` on the real control plane, by seeding the emulator otherwise); this module reads
and writes them over HTTP with the kubernetes client and the sandbox's admin kubeconfig,
like every other client, whichever API server answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
from ingestion_contract.crd import GROUP, PLURAL, VERSION
from ingestion_contract.routing import RoutingConfigError, parse_percentage

NAMESPACE = "default"
FAULT_CONFIGMAP = "ingestion-faults"
FAULT_KEY = "fault.json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Names:
    """Object names, taken from the applied rollout (so the example decides them)."""

    rollout: str
    deployment: str
    routing_configmap: str
    routing_key: str


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": data,
    }


def fault_json(failure_rate: float, delay_seconds: float) -> str:
    return json.dumps({"failureRate": failure_rate, "delaySeconds": delay_seconds})


def _raw(response: Any) -> Any:
    """The JSON body of a `_preload_content=False` call (no client models: only dicts)."""
    return json.loads(response.data or b"null")


class Cluster:
    """Reads and writes of the demo's objects.

    `has_controllers`: a real control plane, whose controllers turn the Deployment into
    Pods (kwok runs them on its fake Node) and report its status; the emulator has none,
    so there the kubelet follows spec.replicas and reports the status itself.
    """

    def __init__(self, kubeconfig: Path, names: Names, has_controllers: bool) -> None:
        self.names = names
        self.has_controllers = has_controllers
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)

    def weight(self) -> int | None:
        """The routing ConfigMap's percentage (None if absent or malformed)."""
        obj = self._get(self.core.read_namespaced_config_map, self.names.routing_configmap)
        try:
            return parse_percentage((obj or {})["data"][self.names.routing_key])
        except (KeyError, TypeError, RoutingConfigError):
            return None

    def rollout(self) -> dict[str, Any] | None:
        try:
            response = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, self.names.rollout, _preload_content=False
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = _raw(response)
        return result

    def deployment(self) -> dict[str, Any] | None:
        return self._get(self.apps.read_namespaced_deployment, self.names.deployment)

    def wanted_replicas(self) -> int:
        """How many worker processes the kubelet runs: one per Pod of the worker Deployment
        Running on the fake Node (real control plane), or spec.replicas (emulator)."""
        deployment = self.deployment() or {}
        if not self.has_controllers:
            return int((deployment.get("spec") or {}).get("replicas") or 0)
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels:
            return 0
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = _raw(
            self.core.list_namespaced_pod(
                NAMESPACE, label_selector=selector, _preload_content=False
            )
        )["items"]
        return sum(
            1
            for pod in pods
            if (pod.get("status") or {}).get("phase") == "Running"
            and "deletionTimestamp" not in pod["metadata"]
        )

    def fault_text(self) -> str | None:
        obj = self._get(self.core.read_namespaced_config_map, FAULT_CONFIGMAP)
        return ((obj or {}).get("data") or {}).get(FAULT_KEY)

    def events(self) -> list[dict[str, Any]]:
        """Events about the rollout, oldest first (as `kubectl get events` would list them)."""
        items = _raw(self.core.list_namespaced_event(NAMESPACE, _preload_content=False))["items"]
        mine = [
            e for e in items if (e.get("involvedObject") or {}).get("name") == self.names.rollout
        ]
        return sorted(mine, key=lambda e: int(e["metadata"].get("resourceVersion") or 0))

    def set_deployment_status(self, replicas: int, ready: int) -> None:
        """What the Deployment controller reports; only the emulator needs this done."""
        if self.has_controllers:
            return
        status = {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready}
        self.apps.patch_namespaced_deployment_status(
            self.names.deployment, NAMESPACE, {"status": status}, _content_type=MERGE_PATCH
        )

    def patch_configmap(self, name: str, data: dict[str, str]) -> None:
        self.core.patch_namespaced_config_map(
            name, NAMESPACE, {"data": data}, _content_type=MERGE_PATCH
        )

    def annotate_rollout(self, key: str, value: str) -> None:
        body = {"metadata": {"annotations": {key: value}}}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, self.names.rollout, body,
            _content_type=MERGE_PATCH,
        )  # fmt: skip

    def create_rollout(self, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    def create_configmap(self, name: str, data: dict[str, str]) -> None:
        meta = kubernetes.client.V1ObjectMeta(name=name)
        body = kubernetes.client.V1ConfigMap(metadata=meta, data=data)
        self.core.create_namespaced_config_map(NAMESPACE, body)

    def _get(self, read: Any, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = _raw(read(name, NAMESPACE, _preload_content=False))
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return result

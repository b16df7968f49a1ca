"""The demo's Kubernetes: the real local control plane when its binaries are built, else
the Kubernetes API emulator.

On the control plane (kube-apiserver, etcd, controller-manager, scheduler and kwok; see
ingestion_sandbox.servers.control_plane), the product is installed as a user installs it:
`helm install` of the chart, which creates the CRD, the worker Deployment, the routing
ConfigMap and the ServiceAccounts with their RBAC; the operator and the ingestion API then
run with TokenRequest tokens of those ServiceAccounts, so they can do exactly what the chart
grants. The Deployment's Pods run on kwok's fake Node and the demo's kubelet runs one real
worker process per Running Pod.

The emulator is the fallback for a machine without the binaries (a clean clone without Go
has none: `bash hack/control-plane/build.sh` builds them). It has no admission, no RBAC,
no controllers and no Helm releases, so there the CRD and the objects are seeded, every
process is admin, the kubelet follows spec.replicas and reports the Deployment's status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ingestion_sandbox.demo.cluster import (
    FAULT_CONFIGMAP,
    FAULT_KEY,
    NAMESPACE,
    Cluster,
    Names,
    configmap,
    fault_json,
)
from ingestion_sandbox.demo.prereqs import KUBECTL_HINT
from ingestion_sandbox.servers.common import Service, ServiceUnavailable
from ingestion_sandbox.servers.control_plane import REPO_ROOT, ControlPlane
from ingestion_sandbox.servers.kube_emulator import KubeEmulator

CHART = REPO_ROOT / "helm" / "apex-ingestion-rollout"
RELEASE = "ingestion"  # the chart names its objects ingestion-<component>
BUILD_HINT = "bash hack/control-plane/build.sh (needs Go; about 11 minutes, once)"


@dataclass
class Kube:
    """The API server the demo runs on and the credentials each of its processes gets."""

    server: Service
    cluster: Cluster
    admin_kubeconfig: Path  # the user's (printed kubectl commands) and the kubelet's
    operator_kubeconfig: Path
    api_kubeconfig: Path
    kubectl: str | None  # the kubectl binary to run (None: go through the API instead)
    description: str  # which API server, said at start and in the summary

    @property
    def validates(self) -> bool:
        """A real server: admission checks what kubectl applies."""
        return isinstance(self.server, ControlPlane)


def start(
    choice: str,
    names: Names,
    values: dict[str, Any],
    run_dir: Path,
    say: Callable[[str], None],
    kubectl_on_path: str | None,
) -> Kube:
    """Start the API server `choice` asks for (auto: the control plane if built) and put
    the demo's objects on it. The caller stops `kube.server`."""
    if choice != "emulator":
        try:
            plane = ControlPlane()
        except ServiceUnavailable as exc:
            if choice == "control-plane":
                raise
            say(f"  the local control plane is not built ({BUILD_HINT}); {exc}")
            say("  falling back to the Kubernetes API emulator (no admission, RBAC, controllers)")
        else:
            plane.start()
            try:
                return on_control_plane(plane, names, values, run_dir, say)
            except BaseException:
                plane.stop()
                raise
    if kubectl_on_path is None:
        say(f"  kubectl is not on PATH: the demo goes through the API instead ({KUBECTL_HINT})")
    return on_emulator(names, int(values["worker"]["replicas"]), run_dir, kubectl_on_path)


def on_control_plane(
    plane: ControlPlane,
    names: Names,
    values: dict[str, Any],
    run_dir: Path,
    say: Callable[[str], None],
) -> Kube:
    """The chart installed (`helm install ... --wait`) on a started control plane, and the
    fault ConfigMap beside it; the operator's and the API's tokens."""
    values_file = run_dir / "values.yaml"
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    command = ["install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values_file)]
    say(f"  $ helm {' '.join(command)} --wait")
    plane.helm(*command, "--wait", "--timeout", "90s")
    cluster = Cluster(plane.kubeconfig, names, has_controllers=True)
    cluster.create_configmap(FAULT_CONFIGMAP, {FAULT_KEY: fault_json(0.0, 0.0)})
    account = plane.kubeconfig_for_service_account
    return Kube(
        server=plane,
        cluster=cluster,
        admin_kubeconfig=plane.kubeconfig,
        operator_kubeconfig=account(NAMESPACE, f"{RELEASE}-operator", duration="24h"),
        api_kubeconfig=account(NAMESPACE, f"{RELEASE}-api", duration="24h"),
        kubectl=str(plane.bin_dir / "kubectl"),
        description=f"local control plane: kube-apiserver {plane.version}, etcd, "
        f"controller-manager, scheduler, kwok (binaries in {plane.bin_dir})",
    )


def on_emulator(names: Names, replicas: int, run_dir: Path, kubectl_on_path: str | None) -> Kube:
    kube = KubeEmulator().start()
    try:
        kube.register_rollout_crd()  # what applying crds/ingestionrollouts.yaml declares
        labels = {"app": names.deployment}
        container = {"name": "worker", "image": "ingestion-worker"}
        template = {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
        kube.seed({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": names.deployment, "namespace": NAMESPACE, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": template},
        })  # fmt: skip
        kube.seed(configmap(names.routing_configmap, {names.routing_key: "0"}))
        kube.seed(configmap(FAULT_CONFIGMAP, {FAULT_KEY: fault_json(0.0, 0.0)}))
        admin = kube.write_kubeconfig(run_dir / "kubeconfig")
        return Kube(
            server=kube,
            cluster=Cluster(admin, names, has_controllers=False),
            admin_kubeconfig=admin,
            operator_kubeconfig=admin,
            api_kubeconfig=admin,
            kubectl=kubectl_on_path,
            description="Kubernetes API emulator (kmock): the control plane is not built",
        )
    except BaseException:
        kube.stop()
        raise


def chart_values(names: Names, replicas: int, temporal: str, prometheus_url: str) -> dict[str, Any]:
    """The chart's values for the demo: its object names from the rollout, its servers on
    127.0.0.1 (only NOTES and the Pods' environment show them: kwok runs no container)."""
    return {
        "temporal": {"address": temporal},
        "prometheus": {"url": prometheus_url},
        "routing": {"configMapName": names.routing_configmap, "key": names.routing_key},
        "api": {"replicas": 1},
        "worker": {"deploymentName": names.deployment, "replicas": replicas},
    }

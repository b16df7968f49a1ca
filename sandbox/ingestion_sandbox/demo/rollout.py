"""The IngestionRollout the demo applies, and the kubectl commands it runs (and prints).

The demo applies examples/rollout.yaml itself, with only the knobs a few-minute story
needs changed (intervals in seconds, the sandbox's Prometheus, the worker counts, the
judge; each one a flag; the thresholds stay the product's) and says which. The rendered
file is written to the run directory, and every kubectl command is printed with the sandbox's
kubeconfig, so the user can repeat it, or run `kubectl get ir` alongside. Without a
kubectl binary the same requests go through the API directly, and the command that
would have run is still printed.
"""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ingestion_contract.crd import (
    DEFAULT_ROUTING_CONFIGMAP,
    DEFAULT_ROUTING_KEY,
    DEFAULT_WORKER_DEPLOYMENT,
    RETRY_ANNOTATION,
)
from ingestion_contract.crd_defaults import SPEC
from ingestion_operator.crd_validation import validate_rollout

from ingestion_sandbox.demo.cluster import FAULT_CONFIGMAP, FAULT_KEY, Cluster, Names
from ingestion_sandbox.demo.options import DemoOptions

HOLD_STEP = 50  # the step held while the fault is injected


def demo_rollout(base: dict[str, Any], o: DemoOptions, prometheus_url: str) -> dict[str, Any]:
    """`base` (the example) with the demo's fast intervals and thresholds."""
    rollout = copy.deepcopy(base)
    spec = rollout.setdefault("spec", {})
    if HOLD_STEP not in spec.get("steps", SPEC["steps"]):
        raise ValueError(f"the demo's story needs a {HOLD_STEP}% step in spec.steps")
    spec["stepDuration"] = f"{o.step_seconds}s"
    spec["stepOverrides"] = [{"step": HOLD_STEP, "duration": f"{o.hold_at_50_seconds}s"}]
    workers = spec.get("workers") or [{"deploymentName": DEFAULT_WORKER_DEPLOYMENT}]
    spec["workers"] = [{**workers[0], "minReplicas": o.min_workers, "maxReplicas": o.max_workers}]
    analysis = spec.setdefault("analysis", {})
    analysis.update(
        prometheusUrl=prometheus_url,
        interval=f"{o.analysis_interval_seconds}s",
        window=f"{o.window_seconds}s",
        minSampleCount=o.min_sample_count,
        judge=o.judge,
    )
    if o.alpha is not None:
        analysis["alpha"] = o.alpha
    thresholds = analysis.setdefault("thresholds", {})
    for key, value in (
        ("maxLatencyRatio", o.max_latency_ratio),
        ("minLatencyDeltaSeconds", o.min_latency_delta_seconds),
        ("latencyQuantile", o.latency_quantile),
    ):
        if value is not None:
            thresholds[key] = value
    problems = validate_rollout(rollout)
    if problems:
        raise ValueError("the demo's rollout is invalid: " + "; ".join(problems))
    return rollout


def names_of(rollout: dict[str, Any]) -> Names:
    spec = rollout["spec"]
    routing = spec.get("routing") or {}
    return Names(
        rollout=rollout["metadata"]["name"],
        deployment=spec["workers"][0]["deploymentName"],
        routing_configmap=routing.get("configMapName", DEFAULT_ROUTING_CONFIGMAP),
        routing_key=routing.get("key", DEFAULT_ROUTING_KEY),
    )


def changed_fields(base: Any, rollout: Any, path: str = "") -> list[str]:
    """`field value` for every leaf of `rollout` that differs from `base` (dotted paths)."""
    if isinstance(rollout, dict):
        old = base if isinstance(base, dict) else {}
        found = []
        for key, value in rollout.items():
            found += changed_fields(old.get(key), value, f"{path}.{key}" if path else str(key))
        return found
    return [] if rollout == base else [f"{path} {json.dumps(rollout)}"]


def write_rollout(rollout: dict[str, Any], base_path: Path, target: Path) -> Path:
    """The rollout as applied, headed by what the demo changed from `base_path`."""
    base = yaml.safe_load(base_path.read_text())
    header = [
        f"# {base_path.name} as the demo applies it: the same rollout, with the latency floor",
        "# of options.py and intervals in seconds so the story fits in minutes.",
        "# Changed fields (python -m ingestion_sandbox.demo --help: the flag of each):",
        *(f"#   {line}" for line in changed_fields(base["spec"], rollout["spec"], "spec")),
    ]
    target.write_text("\n".join(header) + "\n" + yaml.safe_dump(rollout, sort_keys=False))
    return target


class Kubectl:
    """kubectl against the sandbox, every command printed first."""

    def __init__(
        self, binary: str | None, kubeconfig: Path, cluster: Cluster, say: Callable[[str], None]
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.cluster = cluster
        self.say = say
        # The emulator serves no OpenAPI schema for kubectl's client-side validation; a real
        # API server validates (and admission checks the CRD's schema and rules).
        self.validate = False

    def shown(self, args: list[str]) -> str:
        return shlex.join(["kubectl", "--kubeconfig", str(self.kubeconfig), *args])

    def run(self, args: list[str], fallback: Callable[[], None]) -> None:
        self.say("$ " + self.shown(args))
        if self.binary is None:
            fallback()
            self.say("  (done through the Kubernetes API: kubectl is not installed)")
            return
        command = [self.binary, "--kubeconfig", str(self.kubeconfig), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl failed ({done.returncode}): {done.stderr.strip()}")
        for line in done.stdout.strip().splitlines():
            self.say(f"  {line}")

    def apply(self, path: Path, rollout: dict[str, Any]) -> None:
        validation = [] if self.validate else ["--validate=false"]
        self.run(
            ["apply", *validation, "-f", str(path)],
            lambda: self.cluster.create_rollout(rollout),
        )

    def retry(self, value: str) -> None:
        name = self.cluster.names.rollout
        self.run(
            ["annotate", "ir", name, f"{RETRY_ANNOTATION}={value}", "--overwrite"],
            lambda: self.cluster.annotate_rollout(RETRY_ANNOTATION, value),
        )

    def set_fault(self, text: str) -> None:
        patch = json.dumps({"data": {FAULT_KEY: text}})
        self.run(
            ["patch", "configmap", FAULT_CONFIGMAP, "--type", "merge", "-p", patch],
            lambda: self.cluster.patch_configmap(FAULT_CONFIGMAP, {FAULT_KEY: text}),
        )

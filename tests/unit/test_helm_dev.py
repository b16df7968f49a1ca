"""Development mode: values-dev.yaml (every dependency in the cluster), the Tiltfile and the
live-update wrapper, checked without Docker: the chart rendered by Helm, the Tiltfile run
against stand-ins for Tilt's functions, the wrapper run as a real process.
"""

from __future__ import annotations

import collections
import itertools
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack_modules import load_hack

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "apex-ingestion-rollout"
DEV_VALUES = yaml.safe_load((CHART / "values-dev.yaml").read_text())
DEV_RELOAD = CHART / "files" / "dev_reload.py"
DEV_SECRET = "apex-ingestion-dev"
PREFIX = "test-release-ingestion"  # the resource prefix for the tests' release name


helm = load_hack("helm_chart")


@pytest.fixture(scope="module")
def dev(helm_cli: str) -> Any:
    return helm.render(helm.chart_values(DEV_VALUES))


def service_port(rendered: Any, component: str, port_name: str) -> tuple[str, int]:
    service = rendered.one("Service", f"{PREFIX}-{component}")
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == port_name]
    deployment = rendered.one("Deployment", f"{PREFIX}-{component}")
    container_ports = {
        p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]
    }
    assert port["targetPort"] in container_ports, f"{component}: {port} targets no container port"
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    ), f"{component}: the Service selects no pod of its Deployment"
    return service["metadata"]["name"], int(port["port"])


def app_env(rendered: Any, deployment: str) -> dict[str, dict[str, Any]]:
    container = rendered.one("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item for item in container["env"]}


# --------------------------------------------------------------------------- dev services


def test_dev_values_run_every_dependency_in_the_cluster(dev: Any) -> None:
    # Given the dev services' Services (each targeting its pod's port)
    temporal = service_port(dev, "temporal", "grpc")
    service_port(dev, "temporal", "ui")
    prometheus = service_port(dev, "prometheus", "http")
    neo4j = service_port(dev, "neo4j", "bolt")
    minio = service_port(dev, "minio", "s3")
    # Then the API and the worker are pointed at them
    for deployment in (f"{PREFIX}-api", "ingestion-temporal-worker"):
        env = app_env(dev, deployment)
        assert env["TEMPORAL_ADDRESS"]["value"] == f"{temporal[0]}:{temporal[1]}"
        assert env["NEO4J_URI"]["value"] == f"bolt://{neo4j[0]}:{neo4j[1]}"
        assert env["S3_ENDPOINT_URL"]["value"] == f"http://{minio[0]}:{minio[1]}"
    # And the operator's analysis reaches the dev Prometheus (prometheus.url is empty in dev)
    assert helm.chart_values(DEV_VALUES)["prometheus"]["url"] == ""
    assert f"port-forward svc/{prometheus[0]} {prometheus[1]}:{prometheus[1]}" in dev.notes


def test_dev_credentials_are_one_secret_made_by_the_dev_script(dev: Any) -> None:
    # Given every secretKeyRef to the dev Secret in the dev render and the e2e traffic Job
    referenced = set()
    for manifest in dev.manifests:
        text = yaml.safe_dump(manifest.body)
        if DEV_SECRET in text:
            for ref in re.findall(r"secretKeyRef:\n\s+key: (\S+)\n\s+name: (\S+)", text):
                if ref[1] == DEV_SECRET:
                    referenced.add(ref[0])
    e2e = (REPO / "hack/kind-e2e.sh").read_text()
    referenced |= set(re.findall(rf"name: {DEV_SECRET}, key: ([\w-]+)", e2e))
    # Then hack/dev-secrets.sh creates exactly those keys
    created = set(
        re.findall(r"--from-literal=([\w-]+)=", (REPO / "hack/dev-secrets.sh").read_text())
    )
    assert referenced == created
    # And MinIO's root credentials are the pipeline's S3 keys
    env = app_env(dev, "ingestion-temporal-worker")
    minio = app_env(dev, f"{PREFIX}-minio")
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == minio["MINIO_ROOT_USER"]["valueFrom"], (
        "MinIO user and the pipeline's access key differ"
    )
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == minio["MINIO_ROOT_PASSWORD"]["valueFrom"]


def test_dev_prometheus_scrapes_the_app_pods_metrics_ports(dev: Any) -> None:
    config = yaml.safe_load(dev.one("ConfigMap", f"{PREFIX}-prometheus")["data"]["prometheus.yml"])
    (job,) = config["scrape_configs"]
    keep = next(r for r in job["relabel_configs"] if r.get("action") == "keep")
    metrics_ports = {"api": "http", "worker": "metrics", "operator": "metrics"}
    for manifest in dev.of_kind("Deployment"):
        component = manifest.body["metadata"]["labels"]["app.kubernetes.io/component"]
        ports = [
            p["name"] for p in manifest.body["spec"]["template"]["spec"]["containers"][0]["ports"]
        ]
        scraped = [p for p in ports if re.fullmatch(keep["regex"], f"{component};{p}")]
        expected = [metrics_ports[component]] if component in metrics_ports else []
        assert scraped == expected, f"{component}: scrapes {scraped}, expected {expected}"


def test_dev_buckets_are_created_after_install(dev: Any) -> None:
    (job,) = [j for j in dev.of_kind("Job") if j.source == "templates/dev-services.yaml"]
    assert job.body["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    env = {e["name"] for e in job.body["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"DOCUMENTS_BUCKET", "ARTIFACT_BUCKET", "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"} <= env


# --------------------------------------------------------------------------- live update


def test_live_update_wraps_the_processes_and_keeps_the_root_read_only(
    helm_cli: str,
) -> None:
    rendered = helm.render(helm.chart_values(DEV_VALUES, {"liveUpdate": {"enabled": True}}))
    (reload_configmap,) = [
        m.body for m in rendered.of_kind("ConfigMap") if m.name.endswith("-dev-reload")
    ]
    assert reload_configmap["data"]["dev_reload.py"] == DEV_RELOAD.read_text().rstrip("\n")
    for name in (f"{PREFIX}-api", f"{PREFIX}-operator", "ingestion-temporal-worker"):
        pod = rendered.one("Deployment", name)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"][:2] == ["python", "/opt/dev-reload/dev_reload.py"], name
        assert container["command"][-2] == "--", name
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/app/live"]], name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name


# --------------------------------------------------------------------------- Tiltfile


class Tilt:
    """Stand-ins for the Tilt functions the Tiltfile calls; records what it asks for."""

    def __init__(self, release: str) -> None:
        self.env = {"RELEASE": release, "NAMESPACE": "apex"}
        self.calls: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = (
            collections.defaultdict(list)
        )

    def globals(self) -> dict[str, Any]:
        def recorder(name: str, result: Any = None) -> Callable[..., Any]:
            def record(*args: Any, **kwargs: Any) -> Any:
                self.calls[name].append((args, kwargs))
                return result

            return record

        class Os:
            @staticmethod
            def getenv(key: str, default: str | None = None) -> str | None:
                return self.env.get(key, default)

        names = ["docker_build", "k8s_yaml", "k8s_resource", "watch_file", "allow_k8s_contexts"]
        stubs = {name: recorder(name) for name in names}
        stubs |= {
            "os": Os,
            "local": recorder("local", ""),
            "sync": lambda src, dest: ("sync", src, dest),
            "fall_back_on": lambda files: ("fall_back_on", files),
            "run": lambda command, trigger=None: ("run", command),
            "TRIGGER_MODE_MANUAL": "manual",
        }
        return stubs

    def run(self) -> Tilt:
        source = (REPO / "Tiltfile").read_text()
        exec(compile(source, "Tiltfile", "exec"), self.globals())
        return self


def helm_values_of(command: str) -> dict[str, Any]:
    """The values a `helm template ... -f F --set k=v` command line renders with."""
    args = shlex.split(command)
    layers: list[dict[str, Any]] = []
    for flag, value in itertools.pairwise(args):
        if flag == "-f":
            layers.append(yaml.safe_load((REPO / value).read_text()))
        elif flag == "--set":
            key, _, raw = value.partition("=")
            layer: dict[str, Any] = {}
            node = layer
            *parents, last = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = yaml.safe_load(raw)
            layers.append(layer)
    return helm.chart_values(*layers)


@pytest.fixture(scope="module")
def tilt(helm_cli: str) -> tuple[Tilt, Any]:
    plan = Tilt(release=helm.RELEASE_NAME).run()
    (template,) = [a[0] for a, _ in plan.calls["local"] if a[0].startswith("helm template")]
    assert "--include-crds" in template
    return plan, helm.render(helm_values_of(template))


def test_tilt_never_applies_the_uninstall_hook(tilt: tuple[Tilt, Any]) -> None:
    # Tilt applies `helm template` output as plain objects: a pre-delete hook's Job among them
    # would run at once and delete the dev rollouts
    _, rendered = tilt
    hooks = [
        f"{m.kind}/{m.name}"
        for m in rendered.manifests
        if "pre-delete" in (m.body["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    ]
    assert hooks == []


def test_tilt_builds_the_images_the_chart_runs(tilt: tuple[Tilt, Any]) -> None:
    plan, rendered = tilt
    images = {
        c["image"].split(":")[0]
        for m in rendered.manifests
        if m.kind in ("Deployment", "Job")
        for c in m.body["spec"]["template"]["spec"]["containers"]
    }
    built = {args[0]: kwargs for args, kwargs in plan.calls["docker_build"]}
    assert set(built) <= images, f"Tilt builds {set(built) - images}, which no pod runs"
    assert "apex-ingestion-rollout" in built and "apex-ingestion-sandbox" in built
    assert built["apex-ingestion-sandbox"]["target"] == "sandbox"
    assert "AS sandbox" in (REPO / "Dockerfile").read_text()


def test_tilt_syncs_every_package_into_the_live_directory(tilt: tuple[Tilt, Any]) -> None:
    plan, rendered = tilt
    (kwargs,) = [k for args, k in plan.calls["docker_build"] if args[0] == "apex-ingestion-rollout"]
    syncs = {step[1]: step[2] for step in kwargs["live_update"] if step[0] == "sync"}
    command = rendered.one("Deployment", f"{PREFIX}-api")["spec"]["template"]["spec"]["containers"][
        0
    ]["command"]
    packages = next(a for a in command if a.startswith("--packages=")).split("=", 1)[1].split(",")
    live_dir = next(a for a in command if a.startswith("--live-dir=")).split("=", 1)[1]
    # Every package the wrapper seeds is synced from its source directory to the live copy
    assert {Path(src).name: dest for src, dest in syncs.items()} == {
        package: f"{live_dir}/{package}" for package in packages
    }
    for src in syncs:
        assert (REPO / src / "__init__.py").is_file(), src


def test_tilt_resources_and_port_forwards_exist_in_the_chart(tilt: tuple[Tilt, Any]) -> None:
    plan, rendered = tilt
    workloads = {
        m.name: m.body["spec"]["template"]["spec"]
        for m in rendered.manifests
        if m.kind in ("Deployment", "Job")
    }
    forwarded = {}
    for args, kwargs in plan.calls["k8s_resource"]:
        name = args[0]
        assert name in workloads, f"Tilt resource {name} is no workload of the chart"
        ports = {
            p["containerPort"] for c in workloads[name]["containers"] for p in c.get("ports", [])
        }
        for forward in kwargs.get("port_forwards", []):
            local, remote = (int(x) for x in forward.split(":"))
            assert remote in ports, f"{name}: nothing listens on {remote}"
            forwarded[local] = name
    # The API, the Temporal UI and Prometheus, as the README promises
    assert forwarded == {
        8080: f"{PREFIX}-api",
        8233: f"{PREFIX}-temporal",
        9090: f"{PREFIX}-prometheus",
    }


# --------------------------------------------------------------------------- the wrapper


class Output:
    """Lines of a process's output, read in a thread, awaited with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(
            target=lambda: [self.lines.put(line) for line in stream], daemon=True
        ).start()

    def wait_for(self, fragment: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if fragment in line:
                return line
        raise AssertionError(f"no {fragment!r} within {timeout}s; output: {''.join(self.seen)}")


CHILD = """
import signal, sys, time
import fakeapp
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("running version", fakeapp.VERSION, "from", fakeapp.__file__, flush=True)
time.sleep(120)
"""


def test_dev_reload_restarts_the_process_on_a_synced_change(tmp_path: Path) -> None:
    # Given an installed package, and a live directory where Tilt already synced a newer file
    installed, live = tmp_path / "site", tmp_path / "live"
    (installed / "fakeapp").mkdir(parents=True)
    (installed / "fakeapp" / "__init__.py").write_text("VERSION = 1\n")
    (installed / "fakeapp" / "helpers.py").write_text("")
    (live / "fakeapp").mkdir(parents=True)
    (live / "fakeapp" / "__init__.py").write_text("VERSION = 7\n")
    env = {**os.environ, "PYTHONPATH": str(installed)}
    command = [sys.executable, str(DEV_RELOAD), f"--live-dir={live}", "--packages=fakeapp"]
    process = subprocess.Popen(
        [*command, "--", sys.executable, "-c", CHILD],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        # When it starts / Then the live copy wins, and the missing files were seeded
        assert str(live) in output.wait_for("running version 7")
        assert (live / "fakeapp" / "helpers.py").exists()
        # When Tilt syncs a change / Then the process restarts on it
        (live / "fakeapp" / "__init__.py").write_text("VERSION = 8\n")
        output.wait_for("sources changed, restarting")
        output.wait_for("running version 8")
        # When the pod stops / Then SIGTERM reaches the process and the wrapper exits with it
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()


# --------------------------------------------------------------------------- dev secret

# A kubectl stand-in: records its arguments (one call per line); `get secret` fails until
# `create secret` ran. (The API emulator cannot take kubectl's protobuf-encoded Secrets.)
FAKE_KUBECTL = """#!/bin/sh
printf '%s\\0' "$@" >> "$STATE/calls"; echo >> "$STATE/calls"
case " $* " in
  *" get secret "*) [ -f "$STATE/created" ] ;;
  *" create secret "*) touch "$STATE/created" ;;
esac
"""


def test_dev_secret_is_created_once_with_every_key(tmp_path: Path) -> None:
    # Given a kubectl that records what it is asked
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(FAKE_KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STATE": str(tmp_path),
    }
    script = [str(REPO / "hack/dev-secrets.sh"), "apex", "kind-apex"]

    def calls() -> list[list[str]]:
        lines = (tmp_path / "calls").read_text().splitlines()
        return [line.split("\0")[:-1] for line in lines if line]

    # When the script runs / Then it creates the Secret with every key the dev values use
    first = subprocess.run(script, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    (create,) = [c for c in calls() if "create" in c]
    assert create[:6] == ["--context", "kind-apex", "-n", "apex", "create", "secret"]
    assert DEV_SECRET in create
    literals = dict(
        a.removeprefix("--from-literal=").split("=", 1)
        for a in create
        if a.startswith("--from-literal=")
    )
    assert set(literals) == {
        "s3-access-key",
        "s3-secret-key",
        "neo4j-username",
        "neo4j-password",
        "neo4j-auth",
        "api-token",
    }
    assert literals["neo4j-auth"] == f"neo4j/{literals['neo4j-password']}"
    assert len(literals["api-token"]) == 32 and literals["api-token"].isalnum()
    # When it runs again / Then the existing Secret is kept, not replaced
    second = subprocess.run(script, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0 and "exists; kept" in second.stdout
    assert len([c for c in calls() if "create" in c]) == 1

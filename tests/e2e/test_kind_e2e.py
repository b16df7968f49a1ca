"""The kind end-to-end scenario (hack/kind-e2e.sh), and what of it can be checked without one.

test_rollout_rolls_back_on_a_fault_in_kind is the real thing: a kind cluster, the images,
`helm install` with the dev values, the rollout, traffic, a fault, the automatic rollback
seen through `kubectl get ingestionrollouts` and `kubectl get events`. It needs a Docker
engine and skips, saying so, where there is none (as on CI machines). Never faked.

The other tests run everywhere: the scripts parse, skip/refuse cleanly without Docker, the
e2e's rollout is valid for the CRD and names the chart's objects, and the traffic driver
works against real S3 (moto) and an HTTP server standing in for the API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from ingestion_sandbox.servers.services import S3Server

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"
SCRIPTS = ["kind-up.sh", "kind-e2e.sh", "kind-down.sh", "dev-secrets.sh", "lib.sh"]


def docker_engine() -> str | None:
    """None when a Docker engine answers, else why not."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    result = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"`docker info` failed: {(result.stderr or result.stdout).strip()[:200]}"
    return None


@pytest.mark.e2e
@pytest.mark.timeout(3600)
def test_rollout_rolls_back_on_a_fault_in_kind() -> None:
    reason = docker_engine()
    if reason is not None:
        pytest.skip(f"the kind e2e needs a Docker engine ({reason}); run `make e2e` where one is")
    missing = [tool for tool in ("kind", "kubectl", "helm") if shutil.which(tool) is None]
    if missing:
        message = f"the kind e2e needs {', '.join(missing)} on PATH (see hack/lib.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # Given Docker and the tools / When the scenario runs end to end
    result = subprocess.run(
        [str(HACK / "kind-e2e.sh")],
        env={**os.environ, "E2E_REQUIRE_DOCKER": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    # Then it passed: healthy step, fault, automatic rollback, RolledBack Event
    assert result.returncode == 0, output[-8000:]
    assert "PASSED" in output, output[-8000:]


# --------------------------------------------------------------------------- without Docker


@pytest.fixture
def no_docker(tmp_path: Path) -> dict[str, str]:
    """An environment whose `docker` is present but has no engine behind it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(HACK / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_e2e_skips_with_a_clear_message_without_docker(no_docker: dict[str, str]) -> None:
    result = subprocess.run(
        [str(HACK / "kind-e2e.sh")], env=no_docker, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "SKIPPED: no Docker engine answers (docker info failed)" in result.stderr


def test_e2e_fails_without_docker_when_docker_is_required(no_docker: dict[str, str]) -> None:
    env = {**no_docker, "E2E_REQUIRE_DOCKER": "1"}
    result = subprocess.run(
        [str(HACK / "kind-e2e.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "error: no Docker engine answers" in result.stderr


def test_kind_up_refuses_without_docker(no_docker: dict[str, str]) -> None:
    result = subprocess.run(
        [str(HACK / "kind-up.sh")], env=no_docker, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "no Docker engine answers" in result.stderr


def test_e2e_rollout_is_valid_and_drives_the_dev_install() -> None:
    from ingestion_operator.crd_validation import validate_rollout

    rollout = yaml.safe_load((HACK / "e2e/rollout.yaml").read_text())
    assert validate_rollout(rollout) == []
    spec = rollout["spec"]
    values = yaml.safe_load((REPO / "helm/apex-ingestion-rollout/values.yaml").read_text())
    assert spec["routing"]["configMapName"] == values["routing"]["configMapName"]
    assert spec["workers"][0]["deploymentName"] == values["worker"]["deploymentName"]
    # The dev Prometheus of release "apex" (the scripts' default), rewritten for others
    assert spec["analysis"]["prometheusUrl"] == "http://apex-ingestion-prometheus:9090"
    assert "http://apex-ingestion-prometheus:9090" in (HACK / "kind-e2e.sh").read_text()


class _FakeApi(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any], str | None]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, body, self.headers.get("Authorization")))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def fake_api() -> Iterator[str]:
    _FakeApi.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_traffic_driver_uploads_and_submits_documents(s3_server: S3Server, fake_api: str) -> None:
    # Given S3 and an API / When the e2e traffic driver runs for a moment
    s3_server.reset()
    env = {
        **os.environ,
        "API_URL": fake_api,
        "API_TOKEN": "secret-token",
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "DOCUMENTS_BUCKET": "documents",
        "DOCUMENTS_PREFIX": "documents",
        "RATE": "20",
        "DURATION_SECONDS": "1",
    }
    result = subprocess.run(
        [sys.executable, str(HACK / "e2e/traffic.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # Then every submission names a document it uploaded first, with the bearer token
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    assert _FakeApi.received, result.stdout
    for path, body, auth in _FakeApi.received:
        assert (path, body["source"], auth) == ("/v1/documents", "e2e", "Bearer secret-token")
        key = f"documents/e2e/{body['document_id']}"
        head = s3.head_object(Bucket="documents", Key=key)
        assert head["ContentType"] == "text/plain"
    assert "done: submitted=" in result.stdout

"""Each local server speaks its real protocol to the real client the project uses.

These are the foundations the worker, operator and sandbox tests stand on: if one
of these fails, the failure is in the local server, not in the code under test.

The Kubernetes API emulator's tests (the section at the end) are the one place that uses
it, and they cannot use the real API server instead: what they test is the emulator itself,
which `make demo` falls back to on a machine without the control-plane binaries.
"""

from __future__ import annotations

import json
import math
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import neo4j
import openai
import prometheus_client
import pytest
import yaml
from botocore.exceptions import ClientError
from ingestion_sandbox.servers.services import (
    EmbeddingsServer,
    FalkorDBServer,
    KubeEmulator,
    PrometheusServer,
    S3Server,
    TemporalDevServer,
    free_port,
)
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

# --- Temporal ---------------------------------------------------------------------------------


async def test_temporal_dev_server_serves_the_default_namespace(
    temporal_server: TemporalDevServer,
) -> None:
    # Given a client connected over gRPC to the dev server
    client = await Client.connect(temporal_server.address, namespace=temporal_server.namespace)

    # When it describes the default namespace
    answer = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )

    # Then the server knows it
    assert answer.namespace_info.name == "default"


# --- FalkorDB over Bolt -----------------------------------------------------------------------


def test_falkordb_merges_a_node_and_reads_it_back(falkordb: FalkorDBServer) -> None:
    # Given the neo4j driver pointed at FalkorDB's Bolt port
    doc_id = f"doc-{uuid.uuid4()}"
    with neo4j.GraphDatabase.driver(falkordb.bolt_uri, auth=None) as driver:
        # When a node is merged twice (idempotent write)
        for _ in range(2):
            driver.execute_query(
                "MERGE (d:Document {id: $id}) SET d.title = $title",
                id=doc_id,
                title="Quarterly report",
            )

        # Then exactly one node with those properties comes back
        records, _, _ = driver.execute_query(
            "MATCH (d:Document {id: $id}) RETURN d.title AS title", id=doc_id
        )
    assert [record["title"] for record in records] == ["Quarterly report"]


# --- S3 (moto) --------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_server: S3Server) -> Iterator[Any]:
    s3_server.reset()
    yield boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3_server.reset()


def test_s3_stores_and_returns_an_object(s3: Any) -> None:
    # Given a bucket
    s3.create_bucket(Bucket="documents")

    # When an object is put
    s3.put_object(Bucket="documents", Key="a/report.txt", Body=b"hello")

    # Then the same bytes come back
    body = s3.get_object(Bucket="documents", Key="a/report.txt")["Body"].read()
    assert body == b"hello"


def test_s3_answers_no_such_key_for_a_missing_object(s3: Any) -> None:
    # Given an empty bucket
    s3.create_bucket(Bucket="documents")

    # When a missing key is fetched
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket="documents", Key="missing.txt")

    # Then S3 says NoSuchKey
    assert error.value.response["Error"]["Code"] == "NoSuchKey"


def test_s3_reset_forgets_buckets(s3_server: S3Server, s3: Any) -> None:
    # Given a bucket
    s3.create_bucket(Bucket="ephemeral")

    # When the server is reset
    s3_server.reset()

    # Then the bucket is gone
    assert s3.list_buckets()["Buckets"] == []


# --- Prometheus -------------------------------------------------------------------------------


def test_prometheus_scrapes_a_metrics_endpoint_and_answers_promql(
    prometheus: PrometheusServer,
) -> None:
    # Given an app exposing a gauge on its own metrics endpoint
    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge(
        "sandbox_probe_value", "A value for the scrape test.", registry=registry
    )
    gauge.set(42)
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        # When Prometheus is told to scrape it
        prometheus.set_targets({"sandbox-probe": [f"127.0.0.1:{port}"]})

        # Then a PromQL query returns the value (the first data takes 5-7 s)
        result = prometheus.wait_for_series('sandbox_probe_value{job="sandbox-probe"}', timeout=30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert float(result[0]["value"][1]) == 42.0


# --- Embeddings (OpenAI-compatible) -----------------------------------------------------------


@pytest.fixture
def embeddings(embeddings_server: EmbeddingsServer) -> Iterator[EmbeddingsServer]:
    embeddings_server.reset()
    yield embeddings_server
    embeddings_server.reset()


def openai_client(server: EmbeddingsServer, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=timeout)


def test_embeddings_answer_in_the_openai_shape(embeddings: EmbeddingsServer) -> None:
    # Given the real openai client
    client = openai_client(embeddings)

    # When two texts are embedded, twice
    first = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    again = client.embeddings.create(model="text-embedding-3-small", input="alpha")

    # Then each gets a deterministic unit vector of the default size, in input order
    assert [item.index for item in first.data] == [0, 1]
    assert all(len(item.embedding) == 64 for item in first.data)
    assert math.isclose(math.fsum(v * v for v in first.data[0].embedding), 1.0, rel_tol=1e-5)
    assert again.data[0].embedding == pytest.approx(first.data[0].embedding, rel=1e-6)
    assert first.data[0].embedding != first.data[1].embedding
    assert first.model == "text-embedding-3-small"
    assert first.usage.prompt_tokens == first.usage.total_tokens > 0
    assert embeddings.request_count == 2


def test_embeddings_honour_dimensions_and_float_encoding(embeddings: EmbeddingsServer) -> None:
    # Given the real openai client
    client = openai_client(embeddings)

    # When it asks for 16 dimensions as plain floats
    answer = client.embeddings.create(
        model="m", input="gamma", dimensions=16, encoding_format="float"
    )

    # Then the vector has 16 components
    assert len(answer.data[0].embedding) == 16


def test_embeddings_fail_on_demand_with_429_then_recover(embeddings: EmbeddingsServer) -> None:
    # Given a server told to refuse the next request
    client = openai_client(embeddings)
    embeddings.fail_next(1, status=429)

    # When the client calls it twice
    with pytest.raises(openai.RateLimitError) as error:
        client.embeddings.create(model="m", input="delta")
    recovered = client.embeddings.create(model="m", input="delta")

    # Then the first call is rate-limited the OpenAI way and the second succeeds
    assert error.value.status_code == 429
    assert error.value.response.headers["retry-after"] == "0"
    assert error.value.code == "rate_limit_exceeded"
    assert len(recovered.data) == 1
    assert embeddings.request_count == 2


def test_embeddings_fail_with_a_server_error_status(embeddings: EmbeddingsServer) -> None:
    # Given a server told to answer 503 once
    embeddings.fail_next(1, status=503)

    # When the client calls it
    with pytest.raises(openai.InternalServerError) as error:
        openai_client(embeddings).embeddings.create(model="m", input="epsilon")

    # Then the client sees the status
    assert error.value.status_code == 503


def test_embeddings_delay_trips_the_client_timeout(embeddings: EmbeddingsServer) -> None:
    # Given a slow server
    embeddings.set_delay(1.0)

    # When a client with a short timeout calls it
    with pytest.raises(openai.APITimeoutError):
        openai_client(embeddings, timeout=0.2).embeddings.create(model="m", input="zeta")

    # Then the request did reach the server
    assert embeddings.request_count == 1


# --- Kubernetes API emulator ------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_client(kubeconfig: Path) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=str(kubeconfig))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_kube_emulator_creates_a_configmap_with_server_metadata(api_client: k8s.ApiClient) -> None:
    """Tests the emulator itself (make demo's fallback, the benchmarks' API server):
    a created object gets the server's metadata."""
    # Given the kubernetes client loaded from the emulator's kubeconfig
    core = k8s.CoreV1Api(api_client)
    name = unique("settings")

    # When a ConfigMap is created
    created, status, _ = core.create_namespaced_config_map_with_http_info(
        "default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data={"mode": "legacy"})
    )

    # Then the API answers 201 with the fields a real server stamps
    assert status == 201
    assert created.metadata is not None
    assert created.metadata.resource_version
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert created.kind == "ConfigMap"


def test_kube_emulator_answers_422_to_a_failed_json_patch_test(api_client: k8s.ApiClient) -> None:
    """Tests the emulator itself (make demo's fallback, the benchmarks' API server):
    a failed JSON-patch test is a 422."""
    # Given a ConfigMap
    core = k8s.CoreV1Api(api_client)
    name = unique("settings")
    created = core.create_namespaced_config_map(
        "default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name))
    )
    assert created.metadata is not None and created.metadata.resource_version is not None
    version = created.metadata.resource_version

    # When a JSON patch tests a wrong resourceVersion
    with pytest.raises(k8s.ApiException) as error:
        core.patch_namespaced_config_map(
            name,
            "default",
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": version + "0"},
                {"op": "add", "path": "/data", "value": {"mode": "temporal"}},
            ],
        )
    # ...and another tests the right one
    patched = core.patch_namespaced_config_map(
        name,
        "default",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": "/data", "value": {"mode": "temporal"}},
        ],
    )

    # Then the first is rejected with 422 and the second applies and bumps the version
    assert error.value.status == 422
    assert patched.data == {"mode": "temporal"}
    assert patched.metadata is not None
    assert patched.metadata.resource_version != version


def test_kube_emulator_honours_generate_name(api_client: k8s.ApiClient) -> None:
    """Tests the emulator itself (make demo's fallback, the benchmarks' API server):
    generateName (kopf's Events)."""
    # Given the kubernetes client
    core = k8s.CoreV1Api(api_client)

    # When an Event is posted with generateName (as kopf does)
    event = core.create_namespaced_event(
        "default",
        k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(generate_name="rollout-"),
            involved_object=k8s.V1ObjectReference(kind="ConfigMap", name="x", namespace="default"),
            reason="Test",
            message="hello",
            type="Normal",
        ),
    )

    # Then the server picks a name with that prefix
    assert event.metadata is not None and event.metadata.name is not None
    assert event.metadata.name.startswith("rollout-")
    assert len(event.metadata.name) > len("rollout-")


def test_kubectl_reads_an_object_from_the_emulator(
    kube_emulator: KubeEmulator, kubeconfig: Path, kubectl: str
) -> None:
    """Tests the emulator itself (make demo's fallback, the benchmarks' API server):
    kubectl reads what it holds."""
    # Given a ConfigMap seeded by the test
    name = unique("seeded")
    kube_emulator.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"k": "v"},
        }
    )

    # When kubectl gets it as YAML
    result = subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "get",
            "configmap",
            name,
            "-n",
            "default",
            "-o",
            "yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then kubectl prints the object
    assert result.returncode == 0, result.stderr
    obj = yaml.safe_load(result.stdout)
    assert (obj["kind"], obj["metadata"]["name"], obj["data"]) == ("ConfigMap", name, {"k": "v"})


def test_kube_emulator_serves_a_custom_resource_with_a_status_subresource(
    kube_emulator: KubeEmulator, api_client: k8s.ApiClient, kubeconfig: Path, kubectl: str
) -> None:
    """Tests the emulator itself (make demo's fallback, the benchmarks' API server):
    a custom resource with a status subresource."""
    # Given a namespaced custom resource with a status subresource
    kube_emulator.register_custom_resource(
        group="ingestion.apex.dev",
        version="v1alpha1",
        kind="IngestionRollout",
        plural="ingestionrollouts",
        singular="ingestionrollout",
        short_names=["irollout"],
    )
    custom = k8s.CustomObjectsApi(api_client)
    name = unique("rollout")
    args = ("ingestion.apex.dev", "v1alpha1", "default", "ingestionrollouts")

    # When an object is created and its status patched through /status
    created = cast(
        dict[str, Any],
        custom.create_namespaced_custom_object(
            *args,
            {
                "apiVersion": "ingestion.apex.dev/v1alpha1",
                "kind": "IngestionRollout",
                "metadata": {"name": name},
                "spec": {"percent": 10},
            },
        ),
    )
    custom.patch_namespaced_custom_object_status(*args, name, {"status": {"phase": "Canary"}})
    # ...while a status sent to the main resource is ignored, as on a real API server
    custom.patch_namespaced_custom_object(*args, name, {"status": {"phase": "Bogus"}})

    # Then the stored object has the status, the spec and the server metadata
    stored = cast(dict[str, Any], custom.get_namespaced_custom_object(*args, name))
    assert created["metadata"]["resourceVersion"]
    assert stored["spec"] == {"percent": 10}
    assert stored["status"] == {"phase": "Canary"}
    assert stored["metadata"]["generation"] == 1
    assert (
        kube_emulator.get("ingestion.apex.dev/v1alpha1/ingestionrollouts", "default", name)
        == stored
    )
    # ...and kubectl finds it by its short name
    result = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "get", "irollout", name, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == {"phase": "Canary"}


def test_kube_emulator_lists_with_kind_and_api_version(kube_emulator: KubeEmulator) -> None:
    """Tests the emulator itself (make demo's fallback, the benchmarks' API server):
    lists carry kind and apiVersion."""
    # Given the emulator's plain HTTP API
    url = f"{kube_emulator.url}/api/v1/namespaces/default/configmaps"

    # When ConfigMaps are listed (raw JSON, as kopf reads them)
    with urllib.request.urlopen(url, timeout=10) as response:
        listing = json.loads(response.read())

    # Then the list carries its kind and apiVersion
    assert (listing["kind"], listing["apiVersion"]) == ("ConfigMapList", "v1")


def test_kube_emulator_selects_by_metadata_name(api_client: k8s.ApiClient) -> None:
    """Tests the emulator itself, kept as make demo's fallback and the benchmarks' API server:
    it honours `fieldSelector=metadata.name=...` (the API's routing watch selects its
    ConfigMap that way, as RBAC's resourceNames need) and refuses other field selectors."""
    # Given two ConfigMaps
    core = k8s.CoreV1Api(api_client)
    wanted, other = unique("wanted"), unique("other")
    for name in (wanted, other):
        core.create_namespaced_config_map("default", {"metadata": {"name": name}, "data": {}})
    # When one is listed by name / Then only that one comes back
    selected = core.list_namespaced_config_map("default", field_selector=f"metadata.name={wanted}")
    assert [item.metadata.name for item in selected.items] == [wanted]
    # And a field selector the emulator cannot apply is a 400, not silently ignored
    with pytest.raises(k8s.ApiException) as refused:
        core.list_namespaced_config_map("default", field_selector="status.phase=Running")
    assert refused.value.status == 400

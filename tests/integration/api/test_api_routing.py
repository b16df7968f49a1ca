"""The router over real HTTP: the split follows the hash, the live percentage follows the
ConfigMap on every replica, bad values and bad requests are refused, nothing is dropped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from ingestion_api.routing import RoutingConfig, should_use_temporal
from ingestion_api.routing_source import ConfigMapRoutingSource, StaticRoutingSource
from ingestion_worker.models import IngestionStatus
from sample_documents import put_text_documents

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("percentage", [0, 10, 50, 100])
async def test_documents_split_as_the_hash_says(
    start_api: Any, s3: Any, bucket: str, percentage: int
):
    # given an API at this percentage and 40 documents
    api = await start_api(StaticRoutingSource(RoutingConfig(percentage=percentage)))
    ids = [f"split-{percentage}-{i}" for i in range(40)]
    put_text_documents(s3, bucket, ids)
    # when they are posted
    paths = {i: (await api.ingest(i, f"documents/crm/{i}"))["path"] for i in ids}
    await api.service.drain()
    # then each went where the hash sends it, and all completed
    expected = {i: "temporal" if should_use_temporal(i, percentage) else "legacy" for i in ids}
    assert paths == expected
    for document_id in ids:
        status, body = await api.get(f"/v1/documents/crm/{document_id}")
        assert status == 200 and body["status"] == IngestionStatus.COMPLETED, body
        assert body["path"] == expected[document_id]


async def test_configmap_change_reroutes_the_next_request_on_two_replicas(
    start_api: Any, control_plane: Any, kube_namespace: str, s3: Any, bucket: str
):
    """On the real API server (its watches), as the operator and the API meet in a cluster."""
    # given a routing ConfigMap at 0% and two API replicas watching it
    from kubernetes import client, config

    name, ns, kubeconfig = "routing", kube_namespace, str(control_plane.kubeconfig)
    api_client = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": name}, "data": {"temporalPercentage": "0"}}
    )

    def source() -> ConfigMapRoutingSource:
        return ConfigMapRoutingSource(ns, name, "temporalPercentage", kubeconfig, RoutingConfig())

    replicas = [await start_api(source()), await start_api(source())]
    document = "moves-to-temporal"
    put_text_documents(s3, bucket, [document])
    # when the operator writes 100%
    core.patch_namespaced_config_map(name, ns, {"data": {"temporalPercentage": "100"}})
    written = time.monotonic()
    # then within a second the next request on each replica goes to Temporal
    for replica in replicas:
        while replica.service.routing.current.percentage != 100:
            assert time.monotonic() - written < 1.0, "replica did not follow the ConfigMap"
            await asyncio.sleep(0.01)
    for replica in replicas:
        assert (await replica.ingest(document, f"documents/crm/{document}"))["path"] == "temporal"
        await replica.service.drain()
    # and a malformed value keeps the last good percentage
    core.patch_namespaced_config_map(name, ns, {"data": {"temporalPercentage": "lots"}})
    await asyncio.sleep(0.5)
    assert [r.service.routing.current.percentage for r in replicas] == [100, 100]
    status, metrics = await replicas[0].get("/metrics")
    assert status == 200
    assert "ingestion_rollout_percentage 100.0" in metrics
    assert 'ingestion_routing_config_errors_total{reason="not_an_integer"}' in metrics


async def test_same_document_twice_returns_the_same_handle(
    start_api: Any, s3: Any, bucket: str, worker: Any
):
    # given a legacy-path document
    api = await start_api(StaticRoutingSource(RoutingConfig(percentage=0)))
    put_text_documents(s3, bucket, ["twice"])
    # when it is posted twice at once
    first, second = await asyncio.gather(
        api.ingest("twice", "documents/crm/twice"), api.ingest("twice", "documents/crm/twice")
    )
    await api.service.drain()
    # then both answers are the same handle and exactly one is marked duplicate
    assert (first["path"], first["status_url"]) == (second["path"], second["status_url"])
    assert sorted([first["duplicate"], second["duplicate"]]) == [False, True]


@pytest.mark.parametrize(
    "body",
    [
        {"source": "crm"},
        {"document_id": "../../etc", "source": "crm"},
        {"document_id": "x" * 300, "source": "crm"},
        {"document_id": "ok", "source": "CRM!"},
        {"document_id": "ok", "source": "crm", "extra": 1},
        ["not", "an", "object"],
    ],
)
async def test_malformed_requests_get_400(start_api: Any, body: Any):
    api = await start_api()
    status, answer, _ = await api.post("/v1/documents", body)
    assert status == 400 and answer["error"]


async def test_write_endpoints_need_the_token_when_one_is_set(start_api: Any):
    api = await start_api(auth_token="s3cret")
    body = {"document_id": "a", "source": "crm"}
    assert (await api.post("/v1/documents", body))[0] == 401
    bad = {"Authorization": "Bearer wrong"}
    assert (await api.post("/v1/documents", body, headers=bad))[0] == 401
    good = {"Authorization": "Bearer s3cret"}
    assert (await api.post("/v1/documents", body, headers=good))[0] == 202
    assert (await api.get("/healthz"))[0] == 200  # reads stay open
    await api.service.drain()


async def test_overload_answers_429_with_retry_after_and_completes_all_accepted(
    start_api: Any, s3: Any, bucket: str
):
    # given an API that holds at most 4 documents in flight, on the Temporal path
    api = await start_api(
        StaticRoutingSource(RoutingConfig(percentage=100)), max_in_flight=4, retry_after_seconds=2
    )
    ids = [f"burst-{i}" for i in range(30)]
    put_text_documents(s3, bucket, ids)
    # when 30 arrive at once
    answers = await asyncio.gather(
        *(api.post("/v1/documents", {"document_id": i, "source": "crm"}) for i in ids)
    )
    await api.service.drain()
    # then the excess is refused with Retry-After and every accepted one completes
    accepted = [ids[n] for n, (status, _, _) in enumerate(answers) if status == 202]
    refused = [headers for status, _, headers in answers if status == 429]
    assert len(accepted) >= 4 and refused, [a[0] for a in answers]
    assert len(accepted) + len(refused) == len(ids)
    assert all(h["Retry-After"] == "2" for h in refused)
    for document_id in accepted:
        status, body = await api.get(f"/v1/documents/crm/{document_id}")
        assert status == 200 and body["status"] == IngestionStatus.COMPLETED, body


async def test_batch_accepts_each_document_on_its_own(start_api: Any, s3: Any, bucket: str):
    api = await start_api(StaticRoutingSource(RoutingConfig(percentage=50)))
    put_text_documents(s3, bucket, ["b1", "b2"])
    status, body, _ = await api.post(
        "/v1/documents:batch",
        {
            "documents": [
                {"document_id": "b1", "source": "crm"},
                {"document_id": "b2", "source": "crm"},
                {"document_id": "bad id", "source": "crm"},
            ]
        },
    )
    await api.service.drain()
    assert status == 207
    assert [r["status"] for r in body["results"]] == [202, 202, 400]


async def test_readyz_reflects_temporal_and_routing(start_api: Any):
    api = await start_api()
    status, body = await api.get("/readyz")
    assert status == 200 and body["ready"] is True

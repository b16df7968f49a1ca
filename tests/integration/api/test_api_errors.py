"""Bad input gets a 4xx, never a 500 (issue 16, items 10-13), over real HTTP: every
refusal is JSON `{"error": <code>, "message": <text>}` with the documented status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import StaticRoutingSource
from ingestion_sandbox.servers.services import free_port
from prometheus_client.parser import text_string_to_metric_families
from sample_documents import put_text_documents
from temporalio.client import Client

pytestmark = pytest.mark.asyncio

DOCUMENT = {"document_id": "doc-1", "source": "crm"}


def assert_error(status: int, body: Any, expected: int, code: str) -> None:
    assert status == expected, body
    assert isinstance(body, dict) and body["error"] == code and body["message"], body


async def rejected(api: Any, reason: str) -> float:
    """ingestion_rejected_total{reason} as the replica's /metrics shows it."""
    _, text = await api.get("/metrics")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ingestion_rejected_total" and sample.labels["reason"] == reason:
                return sample.value
    return 0.0


def raw_post(path: str, body: bytes, *headers: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1".encode(), b"Host: api", *headers]
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def test_json_nested_2000_deep_is_a_400_not_a_500(start_api: Any) -> None:
    """Given a 4 KB body of 2,000 nested arrays, when posted, then 400 invalid_json."""
    api = await start_api()
    body = b"[" * 2000 + b"]" * 2000
    status, headers, answer = await api.raw(
        raw_post("/v1/documents", body, b"Content-Type: application/json")
    )
    assert headers["Content-Type"].startswith("application/json")
    assert_error(status, json.loads(answer), 400, "invalid_json")


async def test_an_undecodable_bearer_token_is_a_401_not_a_500(start_api: Any) -> None:
    """Given an API with a token, when the Authorization header carries the byte 0xff,
    then 401 with WWW-Authenticate (not a UnicodeEncodeError)."""
    api = await start_api(auth_token="s3cret")
    body = json.dumps(DOCUMENT).encode()
    status, headers, answer = await api.raw(
        raw_post(
            "/v1/documents",
            body,
            b"Content-Type: application/json",
            b"Authorization: Bearer \xff",
        )
    )
    assert_error(status, json.loads(answer), 401, "unauthorized")
    assert headers["WWW-Authenticate"] == "Bearer"


async def test_the_bearer_scheme_is_case_insensitive(start_api: Any, s3: Any, bucket: str) -> None:
    api = await start_api(auth_token="s3cret")
    put_text_documents(s3, bucket, ["doc-1"])
    status, body, _ = await api.post(
        "/v1/documents", DOCUMENT, headers={"Authorization": "bearer s3cret"}
    )
    assert status == 202, body
    await api.service.drain()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_declared_json_is_a_415(start_api: Any, content_type: str) -> None:
    """Given a valid JSON document sent as text/plain, then 415, and nothing is accepted."""
    api = await start_api()
    for path in ("/v1/documents", "/v1/documents:batch"):
        async with api.http.post(
            api.url + path, data=json.dumps(DOCUMENT), headers={"Content-Type": content_type}
        ) as response:
            assert_error(response.status, await response.json(), 415, "unsupported_media_type")
    assert api.service.in_flight == 0


async def test_aiohttps_own_refusals_have_the_same_shape(start_api: Any) -> None:
    """Unknown route 404, wrong method 405 (with Allow), too large a body 413: all JSON."""
    api = await start_api(max_body_bytes=1000)
    status, body = await api.get("/v2/nothing")
    assert_error(status, body, 404, "not_found")
    async with api.http.delete(api.url + "/v1/documents") as response:
        assert_error(response.status, await response.json(), 405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]
    big = {**DOCUMENT, "key": "k" * 2000}
    status, body, _ = await api.post("/v1/documents", big)
    assert_error(status, body, 413, "body_too_large")


async def test_buckets_outside_the_allow_list_are_a_403(
    start_api: Any, s3: Any, bucket: str
) -> None:
    """Given the default allow-list (the configured bucket only), a document in another
    bucket is refused with 403; an allow-list entry with a key prefix admits only it."""
    api = await start_api()
    other = {**DOCUMENT, "bucket": "someone-elses-bucket"}
    status, body, _ = await api.post("/v1/documents", other)
    assert_error(status, body, 403, "bucket_not_allowed")
    assert "someone-elses-bucket" in body["message"]

    prefixed = await start_api(allowed_buckets=f"{bucket}/shared/")
    put_text_documents(s3, bucket, ["doc-1"])
    status, body, _ = await prefixed.post("/v1/documents", DOCUMENT)  # key documents/crm/doc-1
    assert_error(status, body, 403, "bucket_not_allowed")
    s3.put_object(Bucket=bucket, Key="shared/doc-1.txt", Body=b"Invoice INV-1 to a@b.co")
    status, body, _ = await prefixed.post("/v1/documents", {**DOCUMENT, "key": "shared/doc-1.txt"})
    assert status == 202, body
    await prefixed.service.drain()


async def test_a_batch_refuses_wrong_items_alone_and_a_wrong_batch_whole(
    start_api: Any, s3: Any, bucket: str
) -> None:
    """Given a batch mixing one good document and five wrong items, then 207 with one
    result per item (index, status, and the error shape for refusals); a batch that is not
    {"documents": [...]} is one 400."""
    api = await start_api()
    put_text_documents(s3, bucket, ["good"])
    items = [
        {"document_id": "good", "source": "crm"},
        "not an object",
        {"document_id": "bad id", "source": "crm"},
        {"document_id": "x", "source": "crm", "extra": True},
        {"document_id": "y", "source": "crm", "bucket": "elsewhere"},
        {"document_id": "z", "source": "crm", "key": 5},
    ]
    status, body, _ = await api.post("/v1/documents:batch", {"documents": items})
    await api.service.drain()
    assert status == 207, body
    results = body["results"]
    assert [(r["index"], r["status"], r.get("error")) for r in results] == [
        (0, 202, None),
        (1, 400, "invalid_request"),
        (2, 400, "invalid_request"),
        (3, 400, "invalid_request"),
        (4, 403, "bucket_not_allowed"),
        (5, 400, "invalid_request"),
    ]
    assert [r["document_id"] for r in results] == ["good", None, "bad id", "x", "y", "z"]
    assert all(r["message"] for r in results[1:])
    for wrong in ({"documents": []}, {"documents": "x"}, [items[0]], {"documents": [], "x": 1}):
        status, answer, _ = await api.post("/v1/documents:batch", wrong)
        assert_error(status, answer, 400, "invalid_request")


async def test_status_of_malformed_or_unknown_ids(start_api: Any) -> None:
    api = await start_api()
    status, body = await api.get("/v1/documents/CRM!/doc")
    assert_error(status, body, 400, "invalid_request")
    status, body = await api.get("/v1/documents/crm/doc%0A")  # a trailing newline
    assert_error(status, body, 400, "invalid_request")
    status, body = await api.get("/v1/documents/crm/never-posted")
    assert_error(status, body, 404, "not_found")


@pytest.fixture
async def black_hole() -> AsyncIterator[str]:
    """A TCP port that accepts connections and never answers (a hung Temporal frontend)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    for writer in held:
        writer.close()
    server.close()


async def test_unreachable_temporal_is_a_503_within_the_timeout_and_counted(
    start_api: Any, black_hole: str
) -> None:
    """Given Temporal-path routing and a Temporal that refuses connections, or one that
    never answers, then 503 + Retry-After (after API_TEMPORAL_TIMEOUT_SECONDS for the silent
    one, instead of the SDK's retries), each counted by reason; nothing stays in flight."""
    everything = StaticRoutingSource(RoutingConfig(percentage=100))
    refused = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    silent = await Client.connect(black_hole, lazy=True)
    for temporal, reason in ((refused, "temporal_unavailable"), (silent, "temporal_timeout")):
        api = await start_api(everything, temporal=temporal, temporal_start_timeout_seconds=1.0)
        before = await rejected(api, reason)
        status, body, headers = await api.post("/v1/documents", DOCUMENT)
        assert_error(status, body, 503, "temporal_unavailable")
        assert headers["Retry-After"] == "1"
        assert await rejected(api, reason) == before + 1
        assert api.service.in_flight == 0


async def test_a_journal_that_cannot_be_written_refuses_with_503(start_api: Any) -> None:
    """Given a replica whose journal is gone (as a full or failed disk would leave it), when
    a legacy-path document arrives, then 503 journal_unavailable: no 202 without a record."""
    api = await start_api()
    api.service.journal.close()
    status, body, headers = await api.post("/v1/documents", DOCUMENT)
    assert_error(status, body, 503, "journal_unavailable")
    assert headers["Retry-After"] == "1"
    assert api.service.in_flight == 0
    status, answer = await api.get("/v1/documents/crm/doc-1")
    assert_error(status, answer, 503, "journal_unavailable")

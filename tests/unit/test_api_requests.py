"""What the API accepts, decided before any work starts: every refusal is a 4xx ApiError
with a stable code, never an exception that would become a 500."""

from __future__ import annotations

from typing import Any

import pytest
from ingestion_api.app import bearer_matches
from ingestion_api.errors import ApiError, ErrorCode
from ingestion_api.validation import (
    BucketPolicy,
    batch_items,
    check_media_type,
    decode_json,
    parse_document,
)


def refusal(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"[" * 2000 + b"]" * 2000, "nested too deep"),  # 4 KB: RecursionError before
        (b'{"document_id": "a", ', "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "not JSON"),
    ],
)
def test_bodies_that_are_not_json_are_invalid_json(raw: bytes, needle: str) -> None:
    error = refusal(decode_json, raw)
    assert (error.status, error.code) == (400, ErrorCode.INVALID_JSON)
    assert needle in error.message


def test_deep_but_bounded_json_is_parsed() -> None:
    assert decode_json(b"[" * 50 + b"]" * 50) is not None


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/problem+json", "application/vnd.x+json"]
)
def test_json_media_types_pass(content_type: str) -> None:
    check_media_type(content_type)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"]
)
def test_other_media_types_get_415(content_type: str) -> None:
    error = refusal(check_media_type, content_type)
    assert (error.status, error.code) == (415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([], "JSON object"),
        ({"source": "crm"}, "document_id is required"),
        ({"document_id": ["a"], "source": "crm"}, "document_id is required"),
        ({"document_id": "x" * 100_000, "source": "crm"}, "invalid document_id"),
        ({"document_id": "ok\n", "source": "crm"}, "invalid document_id"),
        ({"document_id": "ok", "source": "crm", "extra": 1}, "unknown fields"),
        ({"document_id": "ok", "source": "crm", "bucket": 3}, "bucket must be a string"),
        ({"document_id": "ok", "source": "crm", "key": "a\x00b"}, "control characters"),
        ({"document_id": "ok", "source": "crm", "key": "\ud800"}, "lone surrogate"),
        ({"document_id": "ok", "source": "crm", "key": "k" * 1025}, "1024 characters"),
    ],
)
def test_malformed_documents_are_invalid_requests(body: Any, needle: str) -> None:
    error = refusal(parse_document, body)
    assert (error.status, error.code) == (400, ErrorCode.INVALID_REQUEST)
    assert needle in error.message
    assert len(error.message) < 600  # a huge refused value is not echoed back whole


def test_a_valid_document_keeps_its_location() -> None:
    document = parse_document({"document_id": "a", "source": "crm", "bucket": "b", "key": "k"})
    assert (document.bucket, document.key) == ("b", "k")
    empty = parse_document({"document_id": "a", "source": "crm", "bucket": "", "key": None})
    assert (empty.bucket, empty.key) == (None, None)


@pytest.mark.parametrize(
    "body", [[], {"documents": {}}, {"documents": []}, {"documents": [{}] * 3}, {"docs": [{}]}]
)
def test_a_wrong_batch_is_refused_whole(body: Any) -> None:
    error = refusal(batch_items, body, 2)
    assert (error.status, error.code) == (400, ErrorCode.INVALID_REQUEST)


def test_a_batch_passes_its_items_on_unchecked() -> None:
    """Items are judged one by one later, so a wrong item does not refuse the batch."""
    assert batch_items({"documents": [1, {"x": 2}]}, 5) == [1, {"x": 2}]


def test_the_default_allow_list_is_the_configured_bucket_only() -> None:
    policy = BucketPolicy.parse("", "documents")
    policy.check("documents", "any/key")
    error = refusal(policy.check, "secrets", "documents/crm/a")
    assert (error.status, error.code) == (403, ErrorCode.BUCKET_NOT_ALLOWED)


def test_allow_list_entries_may_bound_the_key_prefix() -> None:
    policy = BucketPolicy.parse(" documents , archive/2024/ ", "ignored")
    policy.check("documents", "x")
    policy.check("archive", "2024/report.pdf")
    assert refusal(policy.check, "archive", "2023/report.pdf").status == 403
    assert refusal(policy.check, "ignored", "x").status == 403
    with pytest.raises(ValueError, match="names no bucket"):
        BucketPolicy.parse("/prefix", "documents")


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),  # the scheme is case-insensitive (RFC 7235)
        ("BEARER  s3cret ", True),
        ("Bearer wrong", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("Bearer \udcff", False),  # b"\xff" as aiohttp hands it over: no UnicodeEncodeError
        ("Bearer \ud800", False),  # a lone surrogate that surrogateescape cannot encode
        (None, False),
        ("", False),
    ],
)
def test_bearer_tokens(header: str | None, ok: bool) -> None:
    assert bearer_matches(header, "s3cret") is ok

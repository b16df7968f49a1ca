"""What the API accepts as a request, decided before any work starts.

Every refusal here is an `ApiError` with a 4xx status: a body that is not JSON, not
UTF-8 or nested deeper than the parser's recursion guard is `invalid_json`; JSON of the
wrong shape is `invalid_request`; a media type other than JSON is 415; a bucket outside
the allow-list is 403, so the API cannot be used to read whatever its S3 credentials
can reach.

Batches (of documents to ingest, or of documents whose status to read) have one rule:
what is wrong with the batch itself (not JSON, not `{"documents": [...]}`, empty, too
long) refuses the whole request with 400; what is wrong with one item refuses that item
only, in its result, with the same error shape, and the other items go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ingestion_worker.errors import ValidationError
from ingestion_worker.models import IngestDocumentInput, validate_identifiers

from ingestion_api.errors import ApiError, ErrorCode

DOCUMENT_FIELDS = frozenset({"document_id", "source", "bucket", "key"})
BATCH_FIELDS = frozenset({"documents"})
STATUS_FIELDS = frozenset({"document_id", "source"})
MAX_KEY_CHARS = 1024  # S3 allows 1024 UTF-8 bytes; JSON Schema can only count characters
JSON_TYPES = ("application/json",)


def check_media_type(content_type: str) -> None:
    """415 unless the body is declared JSON (application/json or application/*+json)."""
    if content_type in JSON_TYPES or (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        return
    raise ApiError(
        415,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        f"Content-Type must be application/json, not {content_type or 'missing'!r}",
    )


def decode_json(raw: bytes) -> Any:
    """The body's JSON value; 400 `invalid_json` for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid_json(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid_json(f"body is not JSON: {exc}") from None
    except RecursionError:  # the parser's own guard against deep nesting
        raise _invalid_json("JSON nested too deep") from None


def _invalid_json(message: str) -> ApiError:
    return ApiError(400, ErrorCode.INVALID_JSON, message)


def invalid(message: str) -> ApiError:
    return ApiError(400, ErrorCode.INVALID_REQUEST, message)


def parse_document(body: Any) -> IngestDocumentInput:
    """One document of a request: `{document_id, source, bucket?, key?}`."""
    if not isinstance(body, dict):
        raise invalid("a document must be a JSON object")
    unknown = set(body) - DOCUMENT_FIELDS
    if unknown:
        raise invalid(f"unknown fields: {sorted(unknown)}")
    for name in ("document_id", "source"):
        if not isinstance(body.get(name), str):
            raise invalid(f"{name} is required and must be a string")
    try:
        validate_identifiers(body["document_id"], body["source"])
    except ValidationError as exc:
        raise invalid(_clip(str(exc))) from None
    bucket, key = body.get("bucket"), body.get("key")
    if bucket is not None and not isinstance(bucket, str):
        raise invalid("bucket must be a string")
    _check_key(key)
    return IngestDocumentInput(body["document_id"], body["source"], bucket or None, key or None)


def _clip(message: str, limit: int = 400) -> str:
    """Messages quote the refused value; a megabyte id must not come back whole."""
    return message if len(message) <= limit else message[:limit] + "..."


def _check_key(key: Any) -> None:
    """At most MAX_KEY_CHARS printable characters (S3 itself bounds the UTF-8 bytes)."""
    if key is None:
        return
    if not isinstance(key, str):
        raise invalid("key must be a string")
    if len(key) > MAX_KEY_CHARS or any(c < " " or c == "\x7f" for c in key):
        raise invalid(f"key must be at most {MAX_KEY_CHARS} characters without control characters")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid("key is not valid Unicode (a lone surrogate)") from None


def status_key(item: Any) -> tuple[str, str]:
    """(source, document_id) of one item of a batch status read: `{source, document_id}`."""
    if not isinstance(item, dict):
        raise invalid("a document must be a JSON object")
    unknown = set(item) - STATUS_FIELDS
    if unknown:
        raise invalid(f"unknown fields: {sorted(unknown)}")
    for name in ("document_id", "source"):
        if not isinstance(item.get(name), str):
            raise invalid(f"{name} is required and must be a string")
    try:
        validate_identifiers(item["document_id"], item["source"])
    except ValidationError as exc:
        raise invalid(_clip(str(exc))) from None
    return item["source"], item["document_id"]


def batch_items(body: Any, max_batch: int) -> list[Any]:
    """The items of a batch body; 400 for the whole batch when the batch itself is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("documents"), list):
        raise invalid('a batch must be {"documents": [...]}')
    unknown = set(body) - BATCH_FIELDS
    if unknown:
        raise invalid(f"unknown fields: {sorted(unknown)}")
    items: list[Any] = body["documents"]
    if not 1 <= len(items) <= max_batch:
        raise invalid(f"a batch holds 1 to {max_batch} documents, not {len(items)}")
    return items


@dataclass(frozen=True)
class BucketPolicy:
    """Which (bucket, key prefix) pairs documents may be read from; "" allows any key."""

    allowed: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, setting: str, default_bucket: str) -> BucketPolicy:
        """`bucket` or `bucket/prefix` entries, comma-separated; empty: the default bucket."""
        entries = [e.strip() for e in setting.split(",") if e.strip()]
        if not entries:
            return cls(((default_bucket, ""),))
        pairs = []
        for entry in entries:
            bucket, _, prefix = entry.partition("/")
            if not bucket:
                raise ValueError(f"API_ALLOWED_BUCKETS entry {entry!r} names no bucket")
            pairs.append((bucket, prefix))
        return cls(tuple(pairs))

    def check(self, bucket: str, key: str) -> None:
        """403 `bucket_not_allowed` unless some entry admits this bucket and key."""
        if any(bucket == b and key.startswith(p) for b, p in self.allowed):
            return
        raise ApiError(
            403,
            ErrorCode.BUCKET_NOT_ALLOWED,
            f"s3://{bucket}/{key} is outside the allowed locations ({self.describe()})",
        )

    def describe(self) -> str:
        return ", ".join(f"{b}/{p}*" if p else f"{b}/*" for b, p in self.allowed)

"""S3 access for documents and for intermediate artifacts.

Knows the difference between "this object does not exist" (permanent:
DocumentNotFoundError) and "S3 is having a bad moment" (transient), which is the
difference between failing fast and retrying.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from ingestion_worker.errors import (
    AboveInlineLimit,
    DocumentNotFoundError,
    TransientStorageError,
    ValidationError,
)
from ingestion_worker.models import Blob

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FetchedObject:
    bucket: str
    key: str
    data: bytes | None  # None when only hashed (too large to keep inline)
    size: int
    sha256: str
    etag: str
    declared_content_type: str | None


def make_s3_client(endpoint_url: str | None, region: str) -> Any:
    """A boto3 S3 client; path-style addressing so MinIO and moto work alike."""
    config = botocore.config.Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 2, "mode": "standard"},
        max_pool_connections=64,
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _raise_for(exc: botocore.exceptions.ClientError, bucket: str, key: str) -> None:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in _NOT_FOUND_CODES:
        what = "bucket" if code == "NoSuchBucket" else "object"
        raise DocumentNotFoundError(f"s3://{bucket}/{key}: {what} not found ({code})") from exc
    raise TransientStorageError(f"s3://{bucket}/{key}: {code or exc}") from exc


class DocumentStore:
    """Reads documents and reads/writes artifacts in S3."""

    def __init__(self, client: Any, artifact_bucket: str) -> None:
        self._s3 = client
        self._artifact_bucket = artifact_bucket
        self._artifact_bucket_ready = False

    def fetch(
        self,
        bucket: str,
        key: str,
        keep_limit: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        etag: str | None = None,
        max_bytes: int | None = None,
        refuse_above: int | None = None,
    ) -> FetchedObject:
        """Stream an object, hashing it; keep its bytes unless larger than `keep_limit`.

        Larger than `max_bytes` is a ValidationError; larger than `refuse_above` raises
        AboveInlineLimit before reading the body (the caller downloads it another way).
        """
        try:
            extra = {"IfMatch": etag} if etag else {}
            response = self._s3.get_object(Bucket=bucket, Key=key, **extra)
        except botocore.exceptions.ClientError as exc:
            _raise_for(exc, bucket, key)
        except botocore.exceptions.BotoCoreError as exc:
            raise TransientStorageError(f"s3://{bucket}/{key}: {exc}") from exc
        size = int(response.get("ContentLength", 0))
        if max_bytes is not None and size > max_bytes:
            response["Body"].close()
            raise ValidationError(
                f"s3://{bucket}/{key}: {size} bytes exceeds the {max_bytes}-byte document limit"
            )
        if refuse_above is not None and size > refuse_above:
            response["Body"].close()
            raise AboveInlineLimit(size)
        keep = keep_limit is None or size <= keep_limit
        digest = hashlib.sha256()
        parts: list[bytes] = []
        read = 0
        try:
            for part in response["Body"].iter_chunks(_READ_CHUNK):
                digest.update(part)
                read += len(part)
                if keep:
                    parts.append(part)
                if on_progress is not None:
                    on_progress(read)
        except botocore.exceptions.BotoCoreError as exc:
            raise TransientStorageError(f"s3://{bucket}/{key}: read failed: {exc}") from exc
        return FetchedObject(
            bucket=bucket,
            key=key,
            data=b"".join(parts) if keep else None,
            size=read,
            sha256=digest.hexdigest(),
            etag=str(response.get("ETag", "")),
            declared_content_type=response.get("ContentType"),
        )

    def read_blob_bytes(self, blob: Blob, inline_is_base64: bool) -> bytes:
        """The bytes a Blob stands for, from inline content or from S3."""
        if blob.inline is not None:
            return base64.b64decode(blob.inline) if inline_is_base64 else blob.inline.encode()
        assert blob.bucket is not None and blob.key is not None
        fetched = self.fetch(blob.bucket, blob.key, etag=blob.etag)
        assert fetched.data is not None
        return fetched.data

    def read_blob_text(self, blob: Blob) -> str:
        return self.read_blob_bytes(blob, inline_is_base64=False).decode("utf-8")

    def text_blob(self, text: str, limit: int | None, artifact_key: str) -> Blob:
        """Inline `text` when it fits in `limit` bytes (None: always), else store it as an
        artifact."""
        data = text.encode("utf-8")
        if limit is None or len(data) <= limit:
            return Blob(inline=text, size=len(data))
        return self.put_artifact(artifact_key, data)

    def put_artifact(self, key: str, data: bytes) -> Blob:
        self._ensure_artifact_bucket()
        try:
            response = self._s3.put_object(Bucket=self._artifact_bucket, Key=key, Body=data)
        except botocore.exceptions.ClientError as exc:
            _raise_for(exc, self._artifact_bucket, key)
        return Blob(
            bucket=self._artifact_bucket, key=key, etag=response.get("ETag"), size=len(data)
        )

    def delete_blobs(self, blobs: list[Blob]) -> int:
        """Delete artifact blobs (never source documents); returns how many were removed."""
        removed = 0
        for blob in blobs:
            if blob.is_reference and blob.bucket == self._artifact_bucket and blob.key:
                self._s3.delete_object(Bucket=blob.bucket, Key=blob.key)
                removed += 1
        return removed

    def _ensure_artifact_bucket(self) -> None:
        if self._artifact_bucket_ready:
            return
        try:
            self._s3.head_bucket(Bucket=self._artifact_bucket)
        except botocore.exceptions.ClientError:
            try:
                self._s3.create_bucket(Bucket=self._artifact_bucket)
            except botocore.exceptions.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._artifact_bucket_ready = True

"""Typed pipeline errors.

Step code raises these; the Temporal activities turn the permanent ones into
non-retryable ApplicationErrors (keeping the class name as the error type) and
the legacy path reports them in the same structured result, so both paths name
a failure the same way.
"""

from __future__ import annotations


class IngestionError(Exception):
    """Base class of every error the pipeline raises on purpose."""

    #: A permanent error is not retried: the same input would fail the same way.
    retryable: bool = True


class DocumentNotFoundError(IngestionError):
    """The S3 object or bucket does not exist (404, NoSuchKey, NoSuchBucket)."""

    retryable = False


class ValidationError(IngestionError):
    """The input is malformed: empty, corrupt, encrypted, bad identifiers."""

    retryable = False


class UnsupportedFormatError(IngestionError):
    """The content type is none the parsers know."""

    retryable = False


class TransientStorageError(IngestionError):
    """S3 answered with something other than 'not found' (throttling, 5xx, network)."""


class EmbeddingError(IngestionError):
    """The embeddings API failed (rate limit, 5xx, timeout); retried by policy."""


class GraphWriteError(IngestionError):
    """Neo4j could not be reached or refused the write; retried by policy."""


PERMANENT_ERRORS: tuple[type[IngestionError], ...] = (
    DocumentNotFoundError,
    ValidationError,
    UnsupportedFormatError,
)

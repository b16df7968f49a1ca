"""Typed pipeline errors.

Step code raises these; the Temporal activities turn the permanent ones into
non-retryable ApplicationErrors (keeping the class name as the error type) and
the legacy path reports them in the same structured result, so both paths name
a failure the same way.

An error that means "a dependency is down" names that dependency in `outage`: such
errors are retried for the dependency's retry budget (S3_RETRY_SECONDS,
GRAPH_RETRY_SECONDS) rather than for the step's attempt count, because an outage
lasts as long as it lasts, not a number of attempts.
"""

from __future__ import annotations


class IngestionError(Exception):
    """Base class of every error the pipeline raises on purpose."""

    #: A permanent error is not retried: the same input would fail the same way.
    retryable: bool = True
    #: The dependency whose outage this error signals ("s3", "graph"), if any.
    outage: str | None = None


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

    outage = "s3"


class EmbeddingError(IngestionError):
    """The embeddings API failed (rate limit, 5xx, timeout); retried by policy."""


class GraphWriteError(IngestionError):
    """Neo4j refused the write; retried by the step's attempts."""


class GraphUnavailableError(GraphWriteError):
    """Neo4j could not be reached (refused, lost or timed-out connection)."""

    outage = "graph"


class AboveInlineLimit(Exception):
    """The document is larger than the inline group takes: nothing was read, and the
    workflow downloads it with the chain of activities instead."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


PERMANENT_ERRORS: tuple[type[IngestionError], ...] = (
    DocumentNotFoundError,
    ValidationError,
    UnsupportedFormatError,
)

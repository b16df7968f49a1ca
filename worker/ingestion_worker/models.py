"""The data that crosses Temporal boundaries (and the legacy path's result).

The workflow takes an `IngestDocumentInput` and returns an `IngestDocumentResult`;
every step takes and returns a `DocumentState`. Content that can be large (raw bytes,
extracted text, vectors) travels as a `Blob`: inline when small, otherwise as a
reference to an S3 object, so no payload nears Temporal's ~2 MB limit and no activity
reads a file another worker wrote.

Annotations here are evaluated (no `from __future__ import annotations`), and every class
is defined before a field names it: Temporal's payload converter resolves a dataclass's
type hints for every payload it decodes, and string annotations would be compiled again
each time (about three quarters of a DocumentState's decoding time, measured).
"""

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from ingestion_contract.metrics import PATH_LEGACY, PATH_TEMPORAL

from ingestion_worker.entities import Entity
from ingestion_worker.errors import ValidationError


class IngestionStatus(StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    PARSED = "parsed"
    ENTITIES_EXTRACTED = "entities_extracted"
    EMBEDDINGS_GENERATED = "embeddings_generated"
    COMPLETED = "completed"
    FAILED = "failed"


class IngestionPath(StrEnum):
    """The two paths; their values are the `path` label of the metric contract."""

    TEMPORAL = PATH_TEMPORAL
    LEGACY = PATH_LEGACY


_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def validate_identifiers(document_id: str, source: str) -> None:
    """Reject ids that would make unsafe S3 keys or workflow ids (ValidationError)."""
    if not isinstance(document_id, str) or not _DOCUMENT_ID.fullmatch(document_id):
        raise ValidationError(
            f"invalid document_id {document_id!r}: 1-255 characters of letters, digits "
            "and . _ : @ -, starting with a letter or digit"
        )
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise ValidationError(
            f"invalid source {source!r}: 1-63 characters of lower-case letters, digits "
            "and . _ -, starting with a letter or digit"
        )


def workflow_id_for(source: str, document_id: str) -> str:
    """Deterministic workflow id: a duplicate request attaches to the running workflow."""
    return f"ingest/{source}/{document_id}"


@dataclass(frozen=True)
class Blob:
    """Content passed between steps: inline text (`inline`) or an S3 object reference."""

    inline: str | None = None
    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    size: int = 0

    @property
    def is_reference(self) -> bool:
        return self.inline is None


@dataclass(frozen=True)
class IngestDocumentInput:
    document_id: str
    source: str
    bucket: str | None = None  # default: the worker's DOCUMENTS_BUCKET
    key: str | None = None  # default: {DOCUMENTS_PREFIX}/{source}/{document_id}
    #: Shadow runs compute everything but leave the graph alone.
    write_graph: bool = True


@dataclass(frozen=True)
class DownloadResult:
    """Where the document was read from and what it is."""

    bucket: str
    key: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StepTiming:
    step: str
    seconds: float


@dataclass(frozen=True)
class DocumentState:
    """What the pipeline knows about one document so far.

    Every step takes one and returns the next (steps.STEPS lists them in order), on both
    paths, so a new step adds its fields here and needs no type of its own. Content that
    can be large (the raw bytes, the text, the chunks with their vectors) is a `Blob`, and
    is dropped from the state once no later step reads it (steps.lighten), so what crosses
    a Temporal boundary stays small.
    """

    request: IngestDocumentInput
    #: Where this run's spilled artifacts go in the artifact bucket.
    artifact_prefix: str
    download: DownloadResult | None = None
    #: The raw bytes, base64-encoded when small, else a reference to the source object itself.
    content: Blob | None = None
    text: Blob | None = None
    char_count: int = 0
    content_hash: str | None = None
    entities: list[Entity] = field(default_factory=list)
    #: JSON list of {"index", "text", "embedding"}; inline or in the artifact bucket.
    chunks: Blob | None = None
    chunk_count: int = 0

    #: The fields that may carry megabytes; the others are small.
    BULKY: ClassVar[tuple[str, ...]] = ("content", "text", "chunks")

    def artifacts(self) -> list[Blob]:
        """The blobs this run spilled to the artifact bucket (never the source document)."""
        return [b for b in (self.text, self.chunks) if b is not None and b.is_reference]

    def result(self, path: IngestionPath, timings: list[StepTiming]) -> "IngestDocumentResult":
        """The completed document, as either path reports it."""
        return IngestDocumentResult(
            document_id=self.request.document_id,
            source=self.request.source,
            path=path,
            status=IngestionStatus.COMPLETED,
            content_type=self.download.content_type if self.download else None,
            content_hash=self.content_hash,
            chunk_count=self.chunk_count,
            entities=list(self.entities),
            timings=list(timings),
            graph_written=self.request.write_graph,
        )


@dataclass(frozen=True)
class InlineResult:
    """What the inline group (steps.INLINE_STEPS, one local activity) did for a document."""

    state: DocumentState
    #: How many of the group's steps ran: all of them, or 0 when the document was larger
    #: than INLINE_DOCUMENT_BYTES (the workflow then runs them as the chain of activities).
    completed: int
    timings: list[StepTiming] = field(default_factory=list)
    #: Artifacts spilled by a step of the group, even if a later one dropped them.
    spilled: list[Blob] = field(default_factory=list)


@dataclass(frozen=True)
class CleanupInput:
    blobs: list[Blob]


@dataclass(frozen=True)
class IngestionStatusView:
    """What the `get_status` query returns at any moment."""

    status: IngestionStatus
    document_id: str
    source: str
    error_type: str | None = None
    error_message: str | None = None
    timings: list[StepTiming] = field(default_factory=list)
    #: "retrying: <error type>: <message> (...)" while a failed step waits for its next
    #: attempt (a dependency outage, a rate limit); None otherwise.
    retrying: str | None = None

    @property
    def display(self) -> str:
        """What a user should read: the retry when one is pending, else the status."""
        return self.retrying or self.status.value


@dataclass(frozen=True)
class IngestDocumentResult:
    """The outcome of either path; the router compares two of these field by field."""

    document_id: str
    source: str
    path: IngestionPath
    status: IngestionStatus
    content_type: str | None = None
    content_hash: str | None = None
    chunk_count: int = 0
    entities: list[Entity] = field(default_factory=list)
    error_type: str | None = None
    error_message: str | None = None
    timings: list[StepTiming] = field(default_factory=list)
    graph_written: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == IngestionStatus.COMPLETED

    @classmethod
    def failure(
        cls,
        request: IngestDocumentInput,
        path: IngestionPath,
        error_type: str,
        message: str,
        timings: list[StepTiming],
    ) -> "IngestDocumentResult":
        """The structured failure both paths return instead of raising."""
        return cls(
            document_id=request.document_id,
            source=request.source,
            path=path,
            status=IngestionStatus.FAILED,
            error_type=error_type,
            error_message=message,
            timings=list(timings),
        )

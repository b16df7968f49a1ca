"""The data that crosses Temporal boundaries (and the legacy path's result).

One frozen dataclass in and one out per workflow and activity. Content that can
be large (raw bytes, extracted text, vectors) travels as a `Blob`: inline when
small, otherwise as a reference to an S3 object, so no payload nears Temporal's
~2 MB limit and no activity reads a file another worker wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

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
    TEMPORAL = "temporal"
    LEGACY = "legacy"


_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def validate_identifiers(document_id: str, source: str) -> None:
    """Reject ids that would make unsafe S3 keys or workflow ids (ValidationError)."""
    if not isinstance(document_id, str) or not _DOCUMENT_ID.match(document_id):
        raise ValidationError(
            f"invalid document_id {document_id!r}: 1-255 characters of letters, digits "
            "and . _ : @ -, starting with a letter or digit"
        )
    if not isinstance(source, str) or not _SOURCE.match(source):
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
class DownloadInput:
    document_id: str
    source: str
    bucket: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class DownloadResult:
    bucket: str
    key: str
    content_type: str
    size: int
    sha256: str
    #: Raw bytes base64-encoded when small, else a reference to the source object itself.
    content: Blob


@dataclass(frozen=True)
class ParseInput:
    document: DownloadResult
    artifact_prefix: str


@dataclass(frozen=True)
class ParseResult:
    text: Blob
    char_count: int
    content_hash: str


@dataclass(frozen=True)
class ExtractEntitiesInput:
    text: Blob


@dataclass(frozen=True)
class ExtractEntitiesResult:
    entities: list[Entity]


@dataclass(frozen=True)
class EmbedInput:
    text: Blob
    artifact_prefix: str


@dataclass(frozen=True)
class EmbedResult:
    #: JSON list of {"index", "text", "embedding"}; inline or in the artifact bucket.
    chunks: Blob
    chunk_count: int
    model: str
    dimensions: int


@dataclass(frozen=True)
class WriteGraphInput:
    document_id: str
    source: str
    content_type: str
    content_hash: str
    entities: list[Entity]
    chunks: Blob


@dataclass(frozen=True)
class WriteGraphResult:
    chunk_count: int
    entity_count: int


@dataclass(frozen=True)
class CleanupInput:
    blobs: list[Blob]


@dataclass(frozen=True)
class StepTiming:
    step: str
    seconds: float


@dataclass(frozen=True)
class IngestionStatusView:
    """What the `get_status` query returns at any moment."""

    status: IngestionStatus
    document_id: str
    source: str
    error_type: str | None = None
    error_message: str | None = None
    timings: list[StepTiming] = field(default_factory=list)


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

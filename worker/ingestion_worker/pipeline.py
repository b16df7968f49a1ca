"""The clients and the work the ingestion steps are made of, once, for both paths.

The step functions (step_functions.py), which the Temporal activities and the legacy
in-process path both run, call these methods, so the two paths cannot drift apart:
same parsing, same entities, same chunks, same vectors, same graph.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ingestion_worker.chunking import chunk_text, content_hash
from ingestion_worker.codec import to_float32
from ingestion_worker.embeddings import Embedder, HashingEmbedder, OpenAIEmbedder
from ingestion_worker.entities import Entity, EntityExtractor, get_extractor
from ingestion_worker.errors import IngestionError
from ingestion_worker.graph import ChunkRecord, GraphWriter
from ingestion_worker.parsing import detect_content_type, parse_document
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.storage import DocumentStore, FetchedObject, make_s3_client


@dataclass(frozen=True)
class ParsedDocument:
    content_type: str
    text: str
    content_hash: str


class Pipeline:
    """The step implementations, holding the clients they need."""

    def __init__(
        self,
        settings: WorkerSettings,
        store: DocumentStore,
        extractor: EntityExtractor,
        embedder: Embedder,
        graph: GraphWriter,
    ) -> None:
        self.settings = settings
        self.store = store
        self.extractor = extractor
        self.embedder = embedder
        self.graph = graph
        #: Largest content passed inline between steps; None keeps everything in memory.
        self.inline_limit: int | None = settings.inline_limit_bytes
        #: Documents larger than this are not downloaded (AboveInlineLimit): set only for
        #: the inline group, which leaves them to the chain of activities.
        self.refuse_above: int | None = None

    def in_memory(self) -> Pipeline:
        """The same clients without an inline limit: within one process (the legacy path)
        content never has to leave memory, so nothing is spilled to S3."""
        unbounded = copy.copy(self)
        unbounded.inline_limit = None
        return unbounded

    def for_inline_group(self) -> Pipeline:
        """The same clients, refusing documents over INLINE_DOCUMENT_BYTES at download."""
        grouped = copy.copy(self)
        grouped.refuse_above = self.settings.inline_document_bytes
        return grouped

    def retry_budget(self, error: IngestionError) -> float | None:
        """Seconds an outage behind `error` is retried for; None: not an outage."""
        budgets = {"s3": self.settings.s3_retry_seconds, "graph": self.settings.graph_retry_seconds}
        return budgets.get(error.outage) if error.outage else None

    def locate(
        self, document_id: str, source: str, bucket: str | None, key: str | None
    ) -> tuple[str, str]:
        """Where a document lives: explicit bucket/key, else the configured defaults."""
        prefix = self.settings.documents_prefix.strip("/")
        default_key = f"{prefix}/{source}/{document_id}" if prefix else f"{source}/{document_id}"
        return bucket or self.settings.documents_bucket, key or default_key

    def fetch(self, bucket: str, key: str, **kwargs: Any) -> FetchedObject:
        """Read a source document, refusing ones over the configured size limit."""
        return self.store.fetch(
            bucket,
            key,
            max_bytes=self.settings.max_document_bytes,
            refuse_above=self.refuse_above,
            **kwargs,
        )

    def parse(self, data: bytes, key: str, declared_content_type: str | None) -> ParsedDocument:
        content_type = detect_content_type(key, declared_content_type)
        text = parse_document(data, content_type)
        return ParsedDocument(content_type, text, content_hash(text))

    def extract_entities(self, text: str) -> list[Entity]:
        return self.extractor.extract(text)

    def embed(self, text: str) -> list[ChunkRecord]:
        chunks = chunk_text(text, self.settings.chunk_size, self.settings.chunk_overlap)
        vectors = self.embedder.embed(chunks) if chunks else []
        return [
            ChunkRecord(i, c, to_float32(v))
            for i, (c, v) in enumerate(zip(chunks, vectors, strict=True))
        ]

    def write(
        self,
        *,
        document_id: str,
        source: str,
        parsed_type: str,
        parsed_hash: str,
        chunks: list[ChunkRecord],
        entities: list[Entity],
    ) -> None:
        self.graph.write_document(
            source=source,
            document_id=document_id,
            content_type=parsed_type,
            content_hash=parsed_hash,
            chunks=chunks,
            entities=entities,
        )

    def close(self) -> None:
        self.graph.close()


def make_embedder(settings: WorkerSettings) -> Embedder:
    """The API embedder when a key is configured, else the offline hashing embedder."""
    if settings.openai_api_key:
        return OpenAIEmbedder(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            model=settings.embedding_model,
            dimensions=settings.embedding_dimensions,
            batch_size=settings.embedding_batch_size,
            timeout=settings.embedding_timeout_seconds,
        )
    return HashingEmbedder(settings.embedding_dimensions)


def build_pipeline(settings: WorkerSettings, graph: GraphWriter | None = None) -> Pipeline:
    """Construct every client from settings (no connection is opened until first use)."""
    if graph is None:
        auth = None
        if settings.neo4j_user:
            auth = (settings.neo4j_user, settings.neo4j_password or "")
        graph = GraphWriter.connect(
            settings.neo4j_uri,
            auth,
            settings.neo4j_database,
            settings.neo4j_connection_timeout_seconds,
            settings.neo4j_max_message_bytes,
        )
    return Pipeline(
        settings=settings,
        store=DocumentStore(
            make_s3_client(settings.s3_endpoint_url, settings.s3_region),
            settings.artifact_bucket,
        ),
        extractor=get_extractor(settings.entity_extractor),
        embedder=make_embedder(settings),
        graph=graph,
    )

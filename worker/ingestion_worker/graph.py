"""Writing a document's graph to Neo4j, idempotently.

(:Document)-[:HAS_CHUNK]->(:Chunk {index, text, embedding})
(:Document)-[:MENTIONS {count}]->(:Entity {type, value})

The Cypher is deliberately portable (Neo4j 5 and FalkorDB's Bolt port): MERGE
everywhere, no constraints, no IF NOT EXISTS, no temporal types. Because some
servers do not roll back a failed transaction, every statement converges when
re-run: writing the same document twice leaves the same graph, and a retry after
a half-done write repairs it.

`max_message_bytes` bounds the size of one Bolt request. Neo4j needs no bound
(0); FalkorDB's Bolt port crashes on requests over 4 KiB, so against it rows are
batched under the bound and an oversized chunk is written in pieces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import neo4j
import neo4j.exceptions

from ingestion_worker.entities import Entity
from ingestion_worker.errors import GraphUnavailableError, GraphWriteError
from ingestion_worker.metrics import DB_CONNECTION_ERRORS

_MAX_ROWS = 200

_UPSERT_DOCUMENT = """
MERGE (d:Document {uid: $uid})
SET d.document_id = $document_id, d.source = $source, d.content_type = $content_type,
    d.content_hash = $content_hash, d.chunk_count = $chunk_count
"""
_UPSERT_CHUNKS = """
MATCH (d:Document {uid: $uid})
UNWIND $rows AS c
MERGE (k:Chunk {uid: c.uid})
SET k.index = c.index, k.text = c.text, k.embedding = c.embedding, k.document_uid = $uid
MERGE (d)-[:HAS_CHUNK]->(k)
"""
_APPEND_TEXT = "MATCH (k:Chunk {uid: $uid}) SET k.text = k.text + $part"
_APPEND_EMBEDDING = "MATCH (k:Chunk {uid: $uid}) SET k.embedding = k.embedding + $part"
_DROP_STALE_CHUNKS = """
MATCH (d:Document {uid: $uid})-[:HAS_CHUNK]->(k:Chunk)
WHERE k.index >= $chunk_count
DETACH DELETE k
"""
_UPSERT_MENTIONS = """
MATCH (d:Document {uid: $uid})
UNWIND $rows AS e
MERGE (n:Entity {type: e.type, value: e.value})
MERGE (d)-[m:MENTIONS]->(n)
SET m.count = e.count, m.content_hash = $content_hash
"""
# Mentions not (re)written for the current content are left over from older content.
_DROP_STALE_MENTIONS = """
MATCH (d:Document {uid: $uid})-[m:MENTIONS]->(:Entity)
WHERE m.content_hash <> $content_hash
DELETE m
"""


@dataclass(frozen=True)
class ChunkRecord:
    index: int
    text: str
    embedding: list[float]


def document_uid(source: str, document_id: str) -> str:
    return f"{source}/{document_id}"


def _size(value: Any) -> int:
    """A generous estimate of a parameter's encoded size (floats cost 9 bytes in Bolt)."""
    if isinstance(value, float):
        return 9
    if isinstance(value, list):
        return 5 + sum(_size(v) for v in value)
    if isinstance(value, dict):
        return 5 + sum(len(k.encode()) + 5 + _size(v) for k, v in value.items())
    return len(json.dumps(value, ensure_ascii=False).encode()) + 5


def _batches(rows: list[dict[str, Any]], budget: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive rows grouped under `budget` bytes (0: no bound) and _MAX_ROWS rows."""
    batch: list[dict[str, Any]] = []
    used = 0
    for row in rows:
        size = _size(row)
        if batch and (len(batch) >= _MAX_ROWS or (budget and used + size > budget)):
            yield batch
            batch, used = [], 0
        batch.append(row)
        used += size
    if batch:
        yield batch


def _pieces[T](items: list[T] | str, budget: int, unit: int) -> Iterator[Any]:
    step = max(1, budget // unit)
    for start in range(0, len(items), step):
        yield items[start : start + step]


class GraphWriter:
    """Writes document graphs through a Neo4j driver; counts connection failures.

    Keep one writer (one driver, one connection pool) per process: connections
    are expensive to open, and FalkorDB's Bolt port loses the handshake of the
    first connection opened after another one closed.
    """

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str | None,
        metric_label: str = "neo4j",
        owns_driver: bool = True,
        max_message_bytes: int = 0,
    ) -> None:
        self._driver = driver
        self._database = database
        self._label = metric_label
        self._owns_driver = owns_driver
        self._max_message = max_message_bytes

    @classmethod
    def connect(
        cls,
        uri: str,
        auth: tuple[str, str] | None,
        database: str | None,
        connection_timeout: float = 5.0,
        max_message_bytes: int = 0,
    ) -> GraphWriter:
        # The acquisition timeout also bounds the Bolt handshake: keep it close to the
        # connect timeout so a lost handshake is retried in seconds, not a minute.
        driver = neo4j.GraphDatabase.driver(
            uri,
            auth=auth,
            connection_timeout=connection_timeout,
            connection_acquisition_timeout=connection_timeout * 2,
        )
        return cls(driver, database, max_message_bytes=max_message_bytes)

    def for_database(self, database: str | None) -> GraphWriter:
        """A writer to another database sharing this one's driver (shadow runs, tests)."""
        return GraphWriter(
            self._driver, database, self._label, False, max_message_bytes=self._max_message
        )

    def close(self) -> None:
        """Close the driver gracefully: a GOODBYE on every pooled connection.

        FalkorDB's Bolt port (measured with 4.16) then drops the handshake of one later
        connection per GOODBYE, from whichever client opens it next: a worker that closed
        16 connections made the next 16 connections of every other process hang until
        their timeout. So a process about to exit does not call this (the OS closing its
        sockets ends the sessions just as well); tests and tools that go on running do.
        """
        if self._owns_driver:
            self._driver.close()

    @property
    def _budget(self) -> int:
        """Bytes left for parameters in one request (the statement text takes ~400)."""
        return max(self._max_message - 600, 256) if self._max_message else 0

    def write_document(
        self,
        *,
        source: str,
        document_id: str,
        content_type: str,
        content_hash: str,
        chunks: list[ChunkRecord],
        entities: list[Entity],
    ) -> None:
        """Upsert the document, its chunks and mentions."""
        uid = document_uid(source, document_id)
        self._run(
            _UPSERT_DOCUMENT,
            {
                "uid": uid,
                "document_id": document_id,
                "source": source,
                "content_type": content_type,
                "content_hash": content_hash,
                "chunk_count": len(chunks),
            },
        )
        self._write_chunks(uid, chunks)
        self._run(_DROP_STALE_CHUNKS, {"uid": uid, "chunk_count": len(chunks)})
        rows = [{"type": e.type, "value": e.value, "count": e.count} for e in entities]
        for batch in _batches(rows, self._budget):
            self._run(_UPSERT_MENTIONS, {"uid": uid, "rows": batch, "content_hash": content_hash})
        self._run(_DROP_STALE_MENTIONS, {"uid": uid, "content_hash": content_hash})

    def _write_chunks(self, uid: str, chunks: list[ChunkRecord]) -> None:
        rows = [
            {"uid": f"{uid}#{c.index}", "index": c.index, "text": c.text, "embedding": c.embedding}
            for c in chunks
        ]
        budget = self._budget
        for batch in _batches(rows, budget):
            if budget and len(batch) == 1 and _size(batch[0]) > budget:
                self._write_chunk_in_pieces(uid, batch[0], budget)
            else:
                self._run(_UPSERT_CHUNKS, {"uid": uid, "rows": batch})

    def _write_chunk_in_pieces(self, uid: str, row: dict[str, Any], budget: int) -> None:
        """Create the chunk with empty content, then append text and vector piece by piece.

        Re-running starts again from the empty values, so a retry still converges.
        """
        self._run(_UPSERT_CHUNKS, {"uid": uid, "rows": [{**row, "text": "", "embedding": []}]})
        for part in _pieces(row["text"], budget, 4):  # up to 4 bytes per character
            self._run(_APPEND_TEXT, {"uid": row["uid"], "part": part})
        for part in _pieces(row["embedding"], budget, 9):
            self._run(_APPEND_EMBEDDING, {"uid": row["uid"], "part": part})

    def read_document(self, source: str, document_id: str) -> dict[str, Any] | None:
        """The stored graph of one document, in a comparable shape (for tests and shadowing)."""
        uid = document_uid(source, document_id)
        docs = self._run(
            "MATCH (d:Document {uid: $uid}) RETURN d.document_id AS document_id, "
            "d.source AS source, d.content_type AS content_type, "
            "d.content_hash AS content_hash, d.chunk_count AS chunk_count",
            {"uid": uid},
        )
        if not docs:
            return None
        indexes = self._run(
            "MATCH (:Document {uid: $uid})-[:HAS_CHUNK]->(k:Chunk) RETURN k.index AS index",
            {"uid": uid},
        )
        chunks = []
        for index in sorted(int(r["index"]) for r in indexes):  # one by one: small replies
            chunk = self._run(
                "MATCH (k:Chunk {uid: $k}) RETURN k.text AS text, k.embedding AS embedding",
                {"k": f"{uid}#{index}"},
            )[0]
            chunks.append({"index": index, "text": chunk["text"], "embedding": chunk["embedding"]})
        mentions = self._run(
            "MATCH (:Document {uid: $uid})-[m:MENTIONS]->(n:Entity) "
            "RETURN n.type AS type, n.value AS value, m.count AS count",
            {"uid": uid},
        )
        return {
            "document": dict(docs[0]),
            "chunks": chunks,
            "mentions": sorted((r["type"], r["value"], int(r["count"])) for r in mentions),
        }

    def _run(self, query: str, params: dict[str, Any]) -> list[neo4j.Record]:
        """One auto-commit statement, retried once on a lost connection.

        Auto-commit is one round trip; a managed transaction (BEGIN/RUN/COMMIT) costs
        three and, against FalkorDB, a 40 ms delayed-ACK stall per statement. Every
        statement is idempotent, so no transaction is needed for correctness.
        """
        for attempt in (1, 2):
            try:
                with self._driver.session(database=self._database) as session:
                    return list(session.run(query, params))
            except _UNREACHABLE as exc:
                DB_CONNECTION_ERRORS.labels(self._label).inc()
                if attempt == 2 or isinstance(exc, OSError):
                    raise GraphUnavailableError(f"Neo4j unreachable: {exc}") from exc
            except neo4j.exceptions.TransientError as exc:  # e.g. DatabaseUnavailable
                raise GraphUnavailableError(f"Neo4j unavailable: {exc.message}") from exc
            except neo4j.exceptions.Neo4jError as exc:
                raise GraphWriteError(f"Neo4j refused the write: {exc.message}") from exc
        raise AssertionError("unreachable")


#: What a lost, refused or exhausted connection raises: the database is down, not the query.
_UNREACHABLE = (
    neo4j.exceptions.ServiceUnavailable,
    neo4j.exceptions.SessionExpired,
    neo4j.exceptions.ConnectionPoolError,
    OSError,
)

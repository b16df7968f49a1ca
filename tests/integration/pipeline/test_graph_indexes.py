"""The graph writer indexes the keys its MERGEs match on, against the real FalkorDB Bolt port.

Without the indexes every MERGE scans its label, so each write gets slower as the graph
grows; a server that refuses an index (it exists already) must not fail the write."""

from __future__ import annotations

from typing import Any

import neo4j
from ingestion_worker.entities import Entity
from ingestion_worker.graph import ChunkRecord, GraphWriter
from ingestion_worker.pipeline import Pipeline


def write(graph: GraphWriter, document_id: str) -> None:
    graph.write_document(
        source="crm",
        document_id=document_id,
        content_type="text/plain",
        content_hash="h1",
        chunks=[ChunkRecord(0, "hello", [0.25, 0.5])],
        entities=[Entity("email", "jane@example.com", 1)],
    )


def indexed_keys(falkordb: Any, database: str | None) -> set[tuple[str, str]]:
    driver = neo4j.GraphDatabase.driver(falkordb.bolt_uri)
    try:
        with driver.session(database=database) as session:
            rows = list(session.run("CALL db.indexes()"))
    finally:
        driver.close()
    return {(row["label"], prop) for row in rows for prop in row["properties"]}


def test_the_first_write_indexes_every_merge_key(pipeline: Pipeline, falkordb: Any):
    # given a writer that has not written yet
    graph = pipeline.graph
    # when it writes a document
    write(graph, "indexed-1")
    # then the graph has an index on each key a MERGE matches on
    keys = indexed_keys(falkordb, pipeline.settings.neo4j_database)
    assert {("Document", "uid"), ("Chunk", "uid"), ("Entity", "value")} <= keys


def test_a_refused_index_does_not_fail_the_write(pipeline: Pipeline):
    # given a graph whose indexes exist already (a first writer made them)
    write(pipeline.graph, "first")
    # when a second writer on the same database asks for them again and writes
    second = pipeline.graph.for_database(pipeline.settings.neo4j_database)
    write(second, "second")
    # then its write went through all the same
    stored = second.read_document("crm", "second")
    assert stored is not None
    assert stored["chunks"] == [{"index": 0, "text": "hello", "embedding": [0.25, 0.5]}]
    assert stored["mentions"] == [("email", "jane@example.com", 1)]

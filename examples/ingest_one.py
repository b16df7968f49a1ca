"""Ingest one document through Temporal and print the result.

TEMPORAL_ADDRESS=localhost:7233 python examples/ingest_one.py --document-id doc-1
"""

from __future__ import annotations

from _common import connect, parser, run, task_queue
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput


async def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--document-id", required=True)
    args = p.parse_args()
    client = await connect()
    handle = await start_ingestion(
        client, IngestDocumentInput(args.document_id, args.source), task_queue()
    )
    result = await handle.result()
    print(f"{result.status}: {result.chunk_count} chunks, {len(result.entities)} entities")
    for entity in result.entities:
        print(f"  {entity.type:<12} {entity.value} (x{entity.count})")


if __name__ == "__main__":
    run(main)

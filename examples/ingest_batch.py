"""Ingest many documents at once and summarise the outcomes.

python examples/ingest_batch.py doc-1 doc-2 doc-3
"""

from __future__ import annotations

import asyncio
from collections import Counter

from _common import connect, parser, run, task_queue
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput


async def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("document_ids", nargs="+")
    args = p.parse_args()
    client = await connect()
    handles = await asyncio.gather(
        *(
            start_ingestion(client, IngestDocumentInput(doc, args.source), task_queue())
            for doc in args.document_ids
        )
    )
    results = await asyncio.gather(*(h.result() for h in handles))
    for result in results:
        print(f"{result.document_id}: {result.status} {result.error_type or ''}".rstrip())
    print(dict(Counter(str(r.status) for r in results)))


if __name__ == "__main__":
    run(main)

"""Start an ingestion and poll its status through the workflow's get_status query.

python examples/ingest_and_poll.py --document-id doc-1
"""

from __future__ import annotations

import asyncio

from _common import connect, parser, run, task_queue
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput, IngestionStatus
from ingestion_worker.workflows import DocumentIngestionWorkflow


async def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--document-id", required=True)
    p.add_argument("--interval", type=float, default=0.05)
    args = p.parse_args()
    client = await connect()
    handle = await start_ingestion(
        client, IngestDocumentInput(args.document_id, args.source), task_queue()
    )
    last = None
    while True:
        view = await handle.query(DocumentIngestionWorkflow.get_status)
        if view.status != last:
            print(f"status: {view.status}")
            last = view.status
        if view.status in (IngestionStatus.COMPLETED, IngestionStatus.FAILED):
            break
        await asyncio.sleep(args.interval)
    for timing in view.timings:
        print(f"  {timing.step:<18} {timing.seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    run(main)

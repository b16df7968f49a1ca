"""Ingest a document from an explicit bucket and key instead of {prefix}/{source}/{id}.

python examples/custom_location.py --document-id q3 --bucket reports --key 2024/q3.pdf
"""

from __future__ import annotations

from _common import connect, parser, run, task_queue
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput


async def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--document-id", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--key", required=True)
    args = p.parse_args()
    client = await connect()
    request = IngestDocumentInput(args.document_id, args.source, bucket=args.bucket, key=args.key)
    result = await (await start_ingestion(client, request, task_queue())).result()
    print(f"{result.status}: {result.content_type}, {result.chunk_count} chunks")


if __name__ == "__main__":
    run(main)

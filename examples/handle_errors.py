"""What a failure looks like: a missing document fails fast with a structured result.

python examples/handle_errors.py --document-id does-not-exist
"""

from __future__ import annotations

from _common import connect, parser, run, task_queue
from ingestion_worker.client import start_ingestion
from ingestion_worker.models import IngestDocumentInput, IngestionStatus


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--document-id", required=True)
    args = p.parse_args()
    client = await connect()
    handle = await start_ingestion(
        client, IngestDocumentInput(args.document_id, args.source), task_queue()
    )
    result = await handle.result()
    if result.status == IngestionStatus.FAILED:
        # Permanent errors (DocumentNotFoundError, ValidationError, UnsupportedFormatError)
        # are not retried; transient ones were retried by policy before landing here.
        print(f"failed with {result.error_type}: {result.error_message}")
        return 1
    print(f"{result.status}")
    return 0


if __name__ == "__main__":
    run(main)

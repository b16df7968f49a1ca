"""Drive document traffic through the ingestion API, from inside the cluster (kind e2e).

Runs in the application image (boto3 and the standard library): uploads small text
documents to S3 (MinIO) where the pipeline looks by default ({prefix}/{source}/{id}) and
submits each one to POST /v1/documents at a steady rate, until DURATION_SECONDS pass.
Every document id is new, so every submission is a fresh ingestion on the path the
router picks for it. Prints a summary line every 10 seconds.

Environment: API_URL, API_TOKEN (optional), S3_ENDPOINT_URL, S3_REGION, DOCUMENTS_BUCKET,
DOCUMENTS_PREFIX, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, RATE (documents/s, default 4),
DURATION_SECONDS (default 900), SOURCE (default e2e).
"""

from __future__ import annotations

import collections
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import botocore.exceptions

BODY = (
    "Invoice INV-{n} for ACME Corp, due 2025-03-{day:02d}, total $1,{n:03d}.00. "
    "Questions: billing@example.com or +1 415 555 {n:04d}. Shipment SHP-{n} left on time. "
)


def ensure_buckets(s3: Any, *buckets: str) -> None:
    for bucket in buckets:
        for _ in range(60):
            try:
                s3.head_bucket(Bucket=bucket)
                break
            except botocore.exceptions.ClientError:
                s3.create_bucket(Bucket=bucket)
                break
            except botocore.exceptions.EndpointConnectionError:
                time.sleep(2)


def submit(api: str, token: str | None, document_id: str, source: str) -> int:
    body = json.dumps({"document_id": document_id, "source": source}).encode()
    request = urllib.request.Request(f"{api}/v1/documents", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, TimeoutError):
        return 0


def main() -> None:
    env = os.environ
    api, token = env["API_URL"].rstrip("/"), env.get("API_TOKEN") or None
    bucket, prefix = env["DOCUMENTS_BUCKET"], env.get("DOCUMENTS_PREFIX", "documents")
    source = env.get("SOURCE", "e2e")
    rate, duration = float(env.get("RATE", "4")), float(env.get("DURATION_SECONDS", "900"))
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name=env["S3_REGION"])
    ensure_buckets(s3, bucket, env.get("ARTIFACT_BUCKET", "ingestion-artifacts"))

    run = uuid.uuid4().hex[:8]
    answers: collections.Counter[int] = collections.Counter()
    start = next_report = time.monotonic()
    n = 0
    while time.monotonic() - start < duration:
        n += 1
        document_id = f"{run}-{n:06d}"
        text = "\n\n".join(BODY.format(n=n % 1000, day=1 + n % 28) for _ in range(20))
        s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}/{source}/{document_id}",
            Body=text.encode(),
            ContentType="text/plain",
        )
        answers[submit(api, token, document_id, source)] += 1
        now = time.monotonic()
        if now >= next_report:
            print(f"t={now - start:5.0f}s submitted={n} answers={dict(answers)}", flush=True)
            next_report = now + 10
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
    print(f"done: submitted={n} answers={dict(answers)}", flush=True)


if __name__ == "__main__":
    main()

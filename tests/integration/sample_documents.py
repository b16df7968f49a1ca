"""Sample documents of every supported format, built in memory for the tests."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import docx
from fpdf import FPDF
from PIL import Image

BODY = (
    "Hello team, please contact jane.doe@example.com or call +1 (415) 555-0100. "
    "Order ORD-12345 was invoiced as INV-2024-0001 for $1,234.50 on 2024-01-31. "
    "Shipment SHP-99812 tracking is at https://tracking.example.com/SHP-99812."
)


def text_document(size: int = 10_000) -> bytes:
    paragraphs = []
    i = 0
    while sum(len(p) + 2 for p in paragraphs) < size:
        paragraphs.append(f"Paragraph {i}. {BODY}")
        i += 1
    return "\n\n".join(paragraphs).encode()[:size]


def put_text_documents(
    s3: Any, bucket: str, ids: list[str], size: int = 2_000, source: str = "crm"
) -> None:
    """Text documents where the pipeline looks by default: documents/{source}/{id}."""
    for document_id in ids:
        s3.put_object(
            Bucket=bucket,
            Key=f"documents/{source}/{document_id}",
            Body=text_document(size),
            ContentType="text/plain",
        )


def markdown_document() -> bytes:
    return f"# Weekly report\n\n**Summary**: {BODY}\n\n- item one\n- [docs](https://docs.example.com)\n".encode()


def html_document() -> bytes:
    return (
        f"<html><head><title>Report</title><script>var x=1;</script></head>"
        f"<body><h1>Report</h1><p>{BODY}</p></body></html>"
    ).encode()


def json_document() -> bytes:
    return json.dumps({"title": "Report", "body": BODY, "tags": ["a", "b"]}).encode()


def pdf_document(pages: int = 2, image_bytes: int = 0) -> bytes:
    pdf = FPDF()
    pdf.set_compression(False)
    pdf.set_font("helvetica", size=11)
    for page in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {page + 1}. {BODY}")
    if image_bytes:
        # Random pixels do not compress: the file grows by about image_bytes.
        side = int((image_bytes / 3) ** 0.5)
        noise = random.Random(7).randbytes(side * side * 3)
        pdf.add_page()
        pdf.image(Image.frombytes("RGB", (side, side), noise), w=150)
    return bytes(pdf.output())


def docx_document() -> bytes:
    document = docx.Document()
    document.add_heading("Report", level=1)
    document.add_paragraph(BODY)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


FORMATS: dict[str, tuple[str, bytes, str]] = {
    # name: (extension, content, declared content type)
    "txt": (".txt", text_document(2_000), "text/plain"),
    "md": (".md", markdown_document(), "application/octet-stream"),
    "html": (".html", html_document(), "text/html; charset=utf-8"),
    "json": (".json", json_document(), "application/json"),
    "pdf": (".pdf", pdf_document(), "application/pdf"),
    "docx": (".docx", docx_document(), ""),
}

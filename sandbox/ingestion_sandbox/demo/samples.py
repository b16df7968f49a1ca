"""Sample documents for the demo's bucket: several formats, built in memory.

The pipeline reads text, Markdown, HTML, JSON, PDF and DOCX; the demo's traffic should
exercise all of them, the way a real document store would. The demo ships inside the
package and must not import the test suite, so the samples are made here, with only
the project's own dependencies: python-docx for DOCX, and a minimal hand-written PDF
(one page of Helvetica text, which pypdf reads back) instead of a PDF library.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import docx

TOPICS = [
    (
        "Invoice",
        "Invoice INV-2024-0042 for order ORD-51234 totals $2,480.00, due on 2024-03-15. "
        "Questions to billing@example.com or +1 (415) 555-0142.",
    ),
    (
        "Shipment notice",
        "Shipment SHP-77120 for order ORD-51234 left the warehouse on 2024-03-02; track it "
        "at https://tracking.example.com/SHP-77120 or call +44 20 7946 0958.",
    ),
    (
        "Support ticket",
        "Customer jane.doe@example.com reports that invoice INV-2024-0039 was charged twice "
        "($129.99 on 2024-02-28). Refund requested; see https://support.example.com/t/8812.",
    ),
]
# About 4 KB of text per document. Real documents are rarely smaller, and tiny ones would
# make the comparison of the two paths all about Temporal's fixed per-document round trips;
# 10 KB at 8 documents a second overloaded two cores shared with every server (measured:
# multi-second latencies on both paths, and FalkorDB failing under it).
PARAGRAPHS = 20
LINES_PER_PAGE = 60


@dataclass(frozen=True)
class Sample:
    key: str  # object key in the bucket
    kind: str  # txt, md, html, json, pdf, docx
    body: bytes
    content_type: str


def _paragraphs(title: str, body: str) -> list[str]:
    return [f"{title}, paragraph {i + 1}. {body}" for i in range(PARAGRAPHS)]


def text_document(title: str, body: str) -> bytes:
    return "\n\n".join([title, *_paragraphs(title, body)]).encode()


def markdown_document(title: str, body: str) -> bytes:
    items = "\n".join(f"- {p}" for p in _paragraphs(title, body))
    return f"# {title}\n\n**Summary**: {body}\n\n{items}\n".encode()


def html_document(title: str, body: str) -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in _paragraphs(title, body))
    return (
        f"<html><head><title>{title}</title><script>var tracking = 1;</script></head>"
        f"<body><h1>{title}</h1>{paragraphs}</body></html>"
    ).encode()


def json_document(title: str, body: str) -> bytes:
    record: dict[str, Any] = {"title": title, "summary": body, "notes": _paragraphs(title, body)}
    return json.dumps(record, indent=2).encode()


def docx_document(title: str, body: str) -> bytes:
    document = docx.Document()
    document.add_heading(title, level=1)
    for paragraph in _paragraphs(title, body):
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pdf_document(title: str, body: str, width: int = 90) -> bytes:
    """A PDF with the text in Helvetica (uncompressed, so any reader extracts it)."""
    lines = [title, ""]
    for paragraph in _paragraphs(title, body):
        lines += [*_wrap(paragraph, width), ""]
    pages = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    # objects: 1 catalog, 2 page tree, 3 font, then per page: the page and its content
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, page in enumerate(pages):
        shown = " T* ".join(f"({_pdf_escape(line)}) Tj" for line in page)
        stream = f"BT /F1 10 Tf 12 TL 50 800 Td {shown} ET".encode("latin-1", "replace")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _wrap(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return [*lines, current] if current else lines


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


FORMATS = {
    # kind: (extension, builder, declared content type; "" lets the pipeline detect it)
    "txt": (".txt", text_document, "text/plain"),
    "md": (".md", markdown_document, "text/markdown"),
    "html": (".html", html_document, "text/html; charset=utf-8"),
    "json": (".json", json_document, "application/json"),
    "pdf": (".pdf", pdf_document, "application/pdf"),
    "docx": (".docx", docx_document, ""),
}


def build_samples(prefix: str = "samples") -> list[Sample]:
    """One document per (format, topic), interleaved so consecutive requests vary format."""
    samples = []
    for index, (title, body) in enumerate(TOPICS):
        for kind, (extension, build, content_type) in FORMATS.items():
            key = f"{prefix}/{title.lower().replace(' ', '-')}-{index}{extension}"
            samples.append(Sample(key, kind, build(title, body), content_type))
    return samples


def seed_bucket(s3: Any, bucket: str, samples: list[Sample]) -> None:
    """Create `bucket` (if needed) and upload the samples."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    for sample in samples:
        extra = {"ContentType": sample.content_type} if sample.content_type else {}
        s3.put_object(Bucket=bucket, Key=sample.key, Body=sample.body, **extra)

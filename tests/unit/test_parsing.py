"""Unit tests for ingestion_worker.parsing: type detection and per-format text extraction."""

from __future__ import annotations

import io
import json

import docx
import pytest
from fpdf import FPDF
from ingestion_worker.errors import UnsupportedFormatError, ValidationError
from ingestion_worker.parsing import (
    DOCX,
    HTML,
    JSON,
    MARKDOWN,
    PDF,
    SUPPORTED_TYPES,
    TEXT,
    detect_content_type,
    parse_document,
)
from pypdf import PdfReader, PdfWriter

# --------------------------------------------------------------------------- helpers


def make_pdf(*pages: str) -> bytes:
    """A real PDF with one page per argument (empty string = a page without text)."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def encrypt_pdf(data: bytes, password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- detection


def test_supported_types_are_the_six_canonical_constants() -> None:
    assert {TEXT, MARKDOWN, HTML, JSON, PDF, DOCX} == SUPPORTED_TYPES
    assert PDF == "application/pdf"
    assert DOCX == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(
    ("key", "declared", "expected"),
    [
        # a specific declared type wins, parameters and case notwithstanding
        ("notes.pdf", "text/plain", TEXT),
        ("a/b/c.bin", "text/html; charset=UTF-8", HTML),
        ("readme", "TEXT/MARKDOWN", MARKDOWN),
        ("x", "application/JSON;charset=utf-8", JSON),
        # aliases map to the canonical constant
        ("x", "text/x-markdown", MARKDOWN),
        ("x", "application/x-pdf", PDF),
        ("x", "application/xhtml+xml", HTML),
        # missing or generic declarations defer to the extension
        ("docs/report.PDF", None, PDF),
        ("docs/report.pdf", "application/octet-stream", PDF),
        ("docs/report.docx", "binary/octet-stream", DOCX),
        ("page.htm", "", HTML),
        ("page.html", None, HTML),
        ("notes.txt", None, TEXT),
        ("notes.text", None, TEXT),
        ("notes.md", None, MARKDOWN),
        ("notes.markdown", "application/octet-stream; name=x", MARKDOWN),
        ("data.json", None, JSON),
        ("archive.tar.md", None, MARKDOWN),
    ],
)
def test_detect_content_type_table(key: str, declared: str | None, expected: str) -> None:
    assert detect_content_type(key, declared) == expected


def test_given_an_unknown_declared_type_when_detecting_then_it_wins_and_is_rejected() -> None:
    # The declaration is trusted over a contradicting ".pdf" extension.
    with pytest.raises(UnsupportedFormatError, match=r"image/png.*scan\.pdf"):
        detect_content_type("scan.pdf", "image/png")


@pytest.mark.parametrize("key", ["archive.zip", "README", "dir.pdf/file", "legacy.doc"])
def test_given_no_usable_type_when_detecting_then_error_names_key_and_extension(key: str) -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        detect_content_type(key, "application/octet-stream")
    assert repr(key) in str(info.value)
    assert "extension" in str(info.value)


# --------------------------------------------------------------------------- text formats


def test_plain_text_is_normalised_but_keeps_paragraphs() -> None:
    raw = b"First line   \r\nsecond line\t\r\n\r\n\r\n\r\nNew paragraph  \n\n\n"
    assert parse_document(raw, TEXT) == "First line\nsecond line\n\nNew paragraph"


def test_text_with_utf8_bom_is_decoded_without_the_bom() -> None:
    assert parse_document("café".encode("utf-8-sig"), TEXT) == "café"


def test_text_that_is_not_utf8_falls_back_to_latin1() -> None:
    assert parse_document("café naïve".encode("latin-1"), TEXT) == "café naïve"


def test_content_type_parameters_are_accepted_by_parse_document() -> None:
    assert parse_document(b"hello", "text/plain; charset=utf-8") == "hello"


def test_markdown_markup_is_stripped_and_links_keep_text_and_url() -> None:
    raw = (
        b"# Title #\n\nSome **bold**, *italic* and _em_ text with snake_case_names.\n\n"
        b"See [the docs](https://example.com/a_b) and `code`.\n\n> quoted\n\n---\n\n"
        b"```\n**literal** in a fence\n```\n"
    )
    assert parse_document(raw, MARKDOWN) == (
        "Title\n\nSome bold, italic and em text with snake_case_names.\n\n"
        "See the docs (https://example.com/a_b) and code.\n\nquoted\n\n"
        "**literal** in a fence"
    )


def test_html_drops_script_and_style_and_keeps_block_structure() -> None:
    raw = b"""<!doctype html><html><head><title>T</title><style>p {color: red}</style>
    <script>alert("x")</script></head><body><!-- hidden --><h1>Heading</h1>
    <p>Hello
       <b>world</b>.</p><ul><li>one</li><li>two</li></ul></body></html>"""
    text = parse_document(raw, HTML)
    assert text == "T\n\nHeading\n\nHello world.\n\none\ntwo"
    assert "alert" not in text and "color" not in text and "hidden" not in text


def test_json_is_flattened_to_key_value_lines_in_document_order() -> None:
    raw = json.dumps(
        {"zeta": "last key first", "customer": {"name": "Ada", "vip": True}, "items": [1, None]}
    ).encode()
    assert parse_document(raw, JSON) == (
        "zeta: last key first\ncustomer.name: Ada\ncustomer.vip: true\nitems[0]: 1\nitems[1]: null"
    )


def test_json_top_level_scalar_is_its_value() -> None:
    assert parse_document(b'"just a string"', JSON) == "just a string"


# --------------------------------------------------------------------------- binary formats


def test_docx_paragraphs_and_tables_are_extracted_in_order() -> None:
    data = make_docx(["Quarterly report", "", "Revenue grew."], table=[["Q1", "10"], ["Q2", "12"]])
    assert parse_document(data, DOCX) == "Quarterly report\n\nRevenue grew.\n\nQ1 | 10\nQ2 | 12"


def test_pdf_text_is_extracted() -> None:
    text = parse_document(make_pdf("Invoice INV-778 total 12.50"), PDF)
    assert text == "Invoice INV-778 total 12.50"


def test_given_a_multi_page_pdf_when_parsing_then_page_order_is_kept() -> None:
    data = make_pdf("Alpha page", "Bravo page", "Charlie page", "Delta page")
    text = parse_document(data, PDF)
    assert text.split("\n\n") == ["Alpha page", "Bravo page", "Charlie page", "Delta page"]


def test_pdf_pages_without_text_are_skipped_when_others_have_text() -> None:
    assert parse_document(make_pdf("first", "", "third"), PDF) == "first\n\nthird"


def test_given_a_pdf_without_any_text_when_parsing_then_no_extractable_text() -> None:
    with pytest.raises(ValidationError, match="no extractable text"):
        parse_document(make_pdf("", ""), PDF)


def test_given_an_encrypted_pdf_when_parsing_then_validation_error_says_encrypted() -> None:
    data = encrypt_pdf(make_pdf("secret plans"), "hunter2")
    with pytest.raises(ValidationError, match="encrypted"):
        parse_document(data, PDF)


def test_pdf_encrypted_with_empty_user_password_is_readable() -> None:
    # Owner-password-only "encryption" restricts permissions, not reading.
    data = encrypt_pdf(make_pdf("public text"), "")
    assert parse_document(data, PDF) == "public text"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("data", "content_type", "format_name"),
    [
        (b"%PDF-1.7\nthis is not really a pdf", PDF, "PDF"),
        (b"not a zip at all", DOCX, "DOCX"),
        (b"PK\x03\x04 truncated zip", DOCX, "DOCX"),
        (b'{"unterminated": ', JSON, "JSON"),
        (b"[" * 100_000, JSON, "JSON"),
    ],
)
def test_given_corrupt_input_when_parsing_then_validation_error_names_format(
    data: bytes, content_type: str, format_name: str
) -> None:
    with pytest.raises(ValidationError, match=f"corrupt {format_name}") as info:
        parse_document(data, content_type)
    assert info.value.__cause__ is not None  # the library's reason is chained, not lost


def test_truncated_pdf_is_a_validation_error() -> None:
    data = make_pdf("some text")
    with pytest.raises(ValidationError):
        parse_document(data[: len(data) // 3], PDF)


@pytest.mark.parametrize("content_type", sorted(SUPPORTED_TYPES))
def test_given_zero_bytes_when_parsing_then_document_is_empty(content_type: str) -> None:
    with pytest.raises(ValidationError, match="document is empty"):
        parse_document(b"", content_type)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"  \n\t\r\n  ", TEXT),
        (b"\n\n", MARKDOWN),
        (b"<html><body><script>x()</script>  </body></html>", HTML),
        (b"{}", JSON),
        (b'{"a": [], "b": {}}', JSON),
    ],
)
def test_given_only_whitespace_after_parsing_then_document_is_empty(
    data: bytes, content_type: str
) -> None:
    with pytest.raises(ValidationError, match="document is empty"):
        parse_document(data, content_type)


def test_docx_with_only_empty_paragraphs_is_empty() -> None:
    with pytest.raises(ValidationError, match="document is empty"):
        parse_document(make_docx(["", "   "]), DOCX)


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream", ""])
def test_given_an_unknown_content_type_when_parsing_then_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedFormatError):
        parse_document(b"whatever", content_type)


def test_errors_are_permanent_so_they_are_not_retried() -> None:
    assert ValidationError.retryable is False
    assert UnsupportedFormatError.retryable is False

"""Turn a stored document into normalised plain text.

The pipeline stores documents as opaque bytes with an optional declared
Content-Type. Every later step (chunking, embeddings, entity extraction) wants
plain text, so this module is the single place that decides what a document
*is* (:func:`detect_content_type`) and how to read it (:func:`parse_document`).

Both the Temporal activities and the legacy in-process path call it, so the
failure contract matters: any problem with the input surfaces as a permanent
:class:`~ingestion_worker.errors.ValidationError` or
:class:`~ingestion_worker.errors.UnsupportedFormatError`, never as a raw
library exception that a retry policy would hammer on.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from ingestion_worker.errors import UnsupportedFormatError, ValidationError

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
JSON = "application/json"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SUPPORTED_TYPES: frozenset[str] = frozenset({TEXT, MARKDOWN, HTML, JSON, PDF, DOCX})

# Declared types that say nothing about the content: fall back to the key's extension.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

# Non-canonical spellings seen in the wild, mapped to the canonical constant.
_TYPE_ALIASES: dict[str, str] = {
    "text/x-markdown": MARKDOWN,
    "text/md": MARKDOWN,
    "text/x-md": MARKDOWN,
    "application/x-pdf": PDF,
    "application/acrobat": PDF,
    "text/pdf": PDF,
    "text/x-pdf": PDF,
    "application/xhtml+xml": HTML,
    "text/json": JSON,
    "text/x-json": JSON,
    "application/x-json": JSON,
}

_EXTENSIONS: dict[str, str] = {
    ".txt": TEXT,
    ".text": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".json": JSON,
    ".pdf": PDF,
    ".docx": DOCX,
}


def _canonical_type(content_type: str | None) -> str:
    """Lower-case, drop parameters ("; charset=...") and resolve aliases."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(base, base)


def detect_content_type(key: str, declared: str | None) -> str:
    """Return the canonical content type of the object stored under ``key``.

    A specific declared Content-Type wins, even over a contradicting extension:
    the uploader said what it is. Only a missing or generic declaration
    (``application/octet-stream``...) lets the key's extension decide.

    Raises:
        UnsupportedFormatError: neither the declaration nor the extension names
            a supported type.
    """
    canonical = _canonical_type(declared)
    if canonical not in _GENERIC_TYPES:
        if canonical in SUPPORTED_TYPES:
            return canonical
        raise UnsupportedFormatError(
            f"unsupported content type {canonical!r} declared for key {key!r}"
        )
    extension = PurePosixPath(key).suffix.lower()
    detected = _EXTENSIONS.get(extension)
    if detected is None:
        raise UnsupportedFormatError(
            f"cannot determine a supported content type for key {key!r}: "
            f"declared {declared!r}, extension {extension or '(none)'!r}"
        )
    return detected


# ---------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------

_BLANK_LINE_RUN = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t\f\v\u00a0]+$", re.MULTILINE)


def _decode(data: bytes) -> str:
    """Decode text bytes: BOM-aware UTF-8 (or UTF-16), latin-1 only as a last resort."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # latin-1 maps every byte, so this cannot fail; it is the usual legacy encoding.
        return data.decode("latin-1")


def _normalise(text: str) -> str:
    """Unify newlines, strip trailing spaces, keep at most one blank line between paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_LINE_RUN.sub("\n\n", text)
    return text.strip("\n")


# ---------------------------------------------------------------------------
# Per-format parsers: bytes -> raw text (normalised afterwards by the caller)
# ---------------------------------------------------------------------------


def _parse_text(data: bytes) -> str:
    return _decode(data)


def _iter_pdf_pages(reader: Any) -> Iterator[str]:
    """Yield the text of each page in order, naming the page on failure."""
    try:
        count = len(reader.pages)  # resolves the page tree, which may itself be broken
    except Exception as exc:
        raise ValidationError(f"corrupt PDF: cannot read the page tree: {exc}") from exc
    for index in range(count):
        try:
            yield reader.pages[index].extract_text() or ""
        except Exception as exc:  # pypdf raises many unrelated types on bad content
            raise ValidationError(f"corrupt PDF: page {index + 1} unreadable: {exc}") from exc


def _open_pdf(data: bytes) -> Any:
    """Open a PDF, decrypting it only when no password is needed."""
    from pypdf import PasswordType, PdfReader  # imported lazily: heavy, PDF-only

    try:
        reader = PdfReader(io.BytesIO(data))
    except Exception as exc:
        raise ValidationError(f"corrupt PDF: {exc or type(exc).__name__}") from exc
    if reader.is_encrypted:
        # Owner-password-only PDFs open with an empty user password; anything else cannot.
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except Exception as exc:
            raise ValidationError(f"PDF is encrypted and cannot be opened: {exc}") from exc
        if not opened:
            raise ValidationError("PDF is encrypted (password required)")
    return reader


def _parse_pdf(data: bytes) -> str:
    reader = _open_pdf(data)
    # Collect pages in a list and join once: linear in the document size.
    pages = [text.strip() for text in _iter_pdf_pages(reader)]
    if not any(pages):
        raise ValidationError("PDF has no extractable text (scanned? image-only pages)")
    return "\n\n".join(page for page in pages if page)


def _docx_table_text(table: Any) -> str:
    """One line per row, cells separated by " | "; merged cells appear once."""
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is repeated across the span
                continue
            seen.add(id(cell._tc))
            cells.append(cell.text.strip())
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _parse_docx(data: bytes) -> str:
    import docx  # imported lazily: heavy, DOCX-only
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        # Paragraphs and tables in document order, each block its own paragraph.
        blocks = [
            _docx_table_text(item) if isinstance(item, Table) else item.text
            for item in document.iter_inner_content()
        ]
    except Exception as exc:  # zipfile, lxml and python-docx errors alike
        raise ValidationError(f"corrupt DOCX: {exc or type(exc).__name__}") from exc
    return "\n\n".join(block for block in blocks if block.strip())


# Block-level HTML elements start a new paragraph; these start a new line.
_HTML_BLOCKS = (
    *("address", "article", "aside", "blockquote", "details", "div", "dl", "fieldset"),
    *("figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("header", "hr", "main", "nav", "ol", "p", "pre", "section", "summary", "table"),
    *("tbody", "thead", "tfoot", "title", "ul"),
)
_HTML_LINES = ("br", "li", "dt", "dd", "tr", "td", "th", "caption")
_HTML_DROP = ("script", "style", "noscript", "template")
_INLINE_SPACE = re.compile(r"[ \t\r\n\f\v]+")


def _is_markup_string(string: Any) -> bool:
    from bs4.element import CData, PreformattedString

    return isinstance(string, PreformattedString) and not isinstance(string, CData)


def _parse_html(data: bytes) -> str:
    from bs4 import BeautifulSoup, NavigableString

    try:
        soup = BeautifulSoup(_decode(data), "html.parser")
    except Exception as exc:  # ParserRejectedMarkup and html.parser internals
        raise ValidationError(f"corrupt HTML: {exc or type(exc).__name__}") from exc
    for selector in _HTML_DROP:
        for element in soup.select(selector):
            element.decompose()
    # Comments, doctype, processing instructions: markup, not content (CDATA is content).
    for special in soup.find_all(string=_is_markup_string):
        special.extract()
    # Source whitespace is insignificant in HTML (except in <pre>): collapse it first,
    # then mark block boundaries with real newlines.
    for string in soup.find_all(string=True):
        if string.find_parent("pre") is None:
            string.replace_with(NavigableString(_INLINE_SPACE.sub(" ", str(string))))
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before("\n\n")
        tag.append("\n\n")
    for tag in soup.find_all(_HTML_LINES):
        tag.insert_after("\n")
    lines = (line.strip() for line in soup.get_text().split("\n"))
    return "\n".join(lines)


def _json_scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _flatten_json(root: Any) -> list[str]:
    """Flatten JSON into "path: value" lines in document order.

    Iterative (explicit stack) so deeply nested documents cannot exhaust the
    recursion limit. Paths use dots for keys and [i] for list items; empty
    containers carry no text and are skipped.
    """
    lines: list[str] = []
    stack: list[tuple[str, Any]] = [("", root)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            items = [(f"{path}.{key}" if path else str(key), val) for key, val in value.items()]
        elif isinstance(value, list):
            items = [(f"{path}[{index}]", val) for index, val in enumerate(value)]
        else:
            lines.append(f"{path}: {_json_scalar(value)}" if path else _json_scalar(value))
            continue
        stack.extend(reversed(items))  # reversed so that pop() keeps document order
    return lines


def _parse_json(data: bytes) -> str:
    try:
        document = json.loads(_decode(data))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ValidationError(f"corrupt JSON: {exc}") from exc
    return "\n".join(_flatten_json(document))


_MD_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$"), r"\1"),  # ATX heading markers
    (re.compile(r"^ {0,3}#{1,6}\s*$"), ""),  # empty heading
    (re.compile(r"^ {0,3}(?:[-=*_]\s*){3,}$"), ""),  # rules and setext underlines
    (re.compile(r"^ {0,3}>\s?"), ""),  # block quotes
    (re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"), r"\1 (\2)"),
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference links
    (re.compile(r"`([^`]+)`"), r"\1"),  # inline code
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *italic*
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _italic_ (not snake_case)
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~|])"), r"\1"),  # backslash escapes
)


def _strip_markdown_line(line: str) -> str:
    for pattern, replacement in _MD_RULES:
        line = pattern.sub(replacement, line)
    return line


def _parse_markdown(data: bytes) -> str:
    """Markdown as readable text: markup removed, link text and URL both kept."""
    out: list[str] = []
    in_fence = False
    for line in _decode(data).splitlines():
        if _MD_FENCE.match(line):
            in_fence = not in_fence  # drop the fence line, keep the code verbatim
            continue
        out.append(line if in_fence else _strip_markdown_line(line))
    return "\n".join(out)


_PARSERS: dict[str, Callable[[bytes], str]] = {
    TEXT: _parse_text,
    MARKDOWN: _parse_markdown,
    HTML: _parse_html,
    JSON: _parse_json,
    PDF: _parse_pdf,
    DOCX: _parse_docx,
}


def parse_document(data: bytes, content_type: str) -> str:
    """Return the normalised plain text of ``data`` read as ``content_type``.

    ``content_type`` is normally the result of :func:`detect_content_type`; it is
    canonicalised again (parameters, case, aliases) so raw header values work too.

    Raises:
        UnsupportedFormatError: ``content_type`` is not a supported type.
        ValidationError: the document is empty, corrupt, encrypted or has no text.
    """
    canonical = _canonical_type(content_type)
    parser = _PARSERS.get(canonical)
    if parser is None:
        raise UnsupportedFormatError(f"unsupported content type {content_type!r}")
    if not data:
        raise ValidationError("document is empty (0 bytes)")
    # Each parser wraps its library's exceptions itself, so a bug here stays a bug.
    text = _normalise(parser(data))
    if not text.strip():
        raise ValidationError(f"document is empty (no text after parsing {canonical})")
    return text

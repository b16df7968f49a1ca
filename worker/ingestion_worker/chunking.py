"""Split document text into overlapping chunks for embedding, and hash content.

Embedding models take bounded inputs, and retrieval works best when a chunk is
a coherent piece of prose, so chunks end at the most natural boundary inside
the size window: a paragraph break, else a sentence end, else whitespace, and
only as a last resort in the middle of a word. A small overlap carries context
from one chunk into the next.

Chunking must be deterministic: the Temporal workflow and the legacy path
derive chunk ids from chunk order and :func:`content_hash`, and a retry must
produce exactly the same chunks as the first attempt.
"""

from __future__ import annotations

import hashlib
import re

_PARAGRAPH_BREAK = "\n\n"
# A sentence ends with . ! or ?, maybe closing quotes/brackets, then whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"'\u2019\u201d)\]]*(?=\s)")
_NON_SPACE = re.compile(r"\S")
_SPACE = re.compile(r"\s")


def _validate(size: int, overlap: int) -> None:
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if size <= overlap:
        raise ValueError(f"size must be greater than overlap, got size={size} overlap={overlap}")


def _skip_space(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after ``pos`` (len(text) if none)."""
    match = _NON_SPACE.search(text, pos)
    return match.start() if match else len(text)


def _break_at(text: str, lo: int, hi: int) -> int:
    """Best end (exclusive) for a chunk that must end within ``[lo, hi]``.

    Preference: paragraph break, then sentence end, then whitespace, else ``hi``.
    Every search is bounded by the window, so the cost per chunk is O(size).
    """
    paragraph = text.rfind(_PARAGRAPH_BREAK, lo, hi + len(_PARAGRAPH_BREAK))
    if paragraph >= lo:
        return paragraph
    sentence_end = -1
    for match in _SENTENCE_END.finditer(text, lo, hi + 1):
        if match.end() <= hi:
            sentence_end = match.end()
    if sentence_end >= lo:
        return sentence_end
    space = max(text.rfind(sep, lo, hi + 1) for sep in (" ", "\n", "\t", "\r"))
    return space if space >= lo else hi


def _next_start(text: str, end: int, overlap: int) -> int:
    """Start of the next chunk: up to ``overlap`` characters back, at a word start if possible."""
    start = end - overlap
    if overlap and start > 0 and not text[start - 1].isspace():
        # Mid-word: move forward to the next word rather than start on a fragment.
        space = _SPACE.search(text, start, end)
        if space is not None:
            start = space.start()
    return _skip_space(text, start)


def chunk_spans(text: str, size: int = 1000, overlap: int = 100) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` offsets of the chunks :func:`chunk_text` returns.

    Guarantees: spans are in increasing start order; each is non-empty, at most
    ``size`` long, and neither starts nor ends with whitespace; consecutive spans
    overlap by at most ``overlap`` characters; whatever lies outside every span
    is whitespace. Runs in O(len(text)) for a fixed ``size``.

    Raises:
        ValueError: unless ``size > overlap >= 0``.
    """
    _validate(size, overlap)
    spans: list[tuple[int, int]] = []
    length = len(text)
    # Never break before this many characters, so each step advances the start
    # by at least max(1, size // 2 - overlap) and no chunk is a tiny fragment.
    min_len = max(overlap + 1, size // 2)
    start = _skip_space(text, 0)
    while start < length:
        hard_end = start + size
        end = length if hard_end >= length else _break_at(text, start + min_len, hard_end)
        trimmed = start + len(text[start:end].rstrip())
        spans.append((start, trimmed))
        if end >= length:
            break
        start = _next_start(text, end, overlap)
    return spans


def chunk_text(text: str, size: int = 1000, overlap: int = 100) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters.

    Consecutive chunks share up to ``overlap`` characters. Chunks are stripped
    of surrounding whitespace and never empty; whitespace-only text gives ``[]``.
    The result depends only on the arguments.

    Raises:
        ValueError: unless ``size > overlap >= 0``.
    """
    return [text[start:end] for start, end in chunk_spans(text, size, overlap)]


def content_hash(text: str) -> str:
    """Hex SHA-256 of the UTF-8 encoding of ``text``.

    Lone surrogates (possible after JSON decoding) are encoded as-is rather than
    raising, so every ``str`` has a hash; for valid text this is plain UTF-8.
    """
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()

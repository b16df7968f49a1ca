"""Unit tests for ingestion_worker.chunking: properties of chunk_text, edge cases, hashing."""

from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingestion_worker.chunking import chunk_spans, chunk_text, content_hash

# Text made of words, punctuation and every kind of break the chunker looks for.
_WORDS = ["a", "word", "longerword", "x" * 40, "é", "'", ".", "!", "?"]
_SPACES = [" ", " ", "  ", "\n", "\n\n", "\t"]
_TOKENS = st.sampled_from([*_WORDS, *_SPACES])
TEXTS = st.one_of(
    st.lists(_TOKENS, max_size=300).map("".join),
    st.text(max_size=400),  # arbitrary unicode, including no whitespace at all
)


@st.composite
def sizes(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=120))
    overlap = draw(st.integers(min_value=0, max_value=size - 1))
    return size, overlap


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, params=sizes())
def test_chunks_are_non_empty_bounded_and_trimmed(text: str, params: tuple[int, int]) -> None:
    size, overlap = params
    for chunk in chunk_text(text, size, overlap):
        assert chunk.strip()
        assert len(chunk) <= size
        assert chunk == chunk.strip()


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, params=sizes())
def test_chunks_cover_the_text_in_order(text: str, params: tuple[int, int]) -> None:
    """Given any text, when chunked, then the chunks are the text's slices, in order,
    overlapping by at most ``overlap``, and only whitespace is left uncovered."""
    size, overlap = params
    spans = chunk_spans(text, size, overlap)
    assert [text[start:end] for start, end in spans] == chunk_text(text, size, overlap)
    covered = 0  # everything before this offset is covered or whitespace
    previous_start = -1
    for start, end in spans:
        assert start > previous_start  # strictly advancing
        assert covered - start <= overlap  # bounded overlap with the previous chunk
        assert text[covered:start].strip() == ""  # no gap except whitespace
        covered = max(covered, end)
        previous_start = start
    assert text[covered:].strip() == ""
    # Reassembling the chunks without their overlaps gives back the non-space text.
    rebuilt, covered = [], 0
    for start, end in spans:
        rebuilt.append(text[max(start, covered) : end])
        covered = max(covered, end)
    assert "".join("".join(rebuilt).split()) == "".join(text.split())


@settings(max_examples=100, deadline=None)
@given(text=TEXTS, params=sizes())
def test_chunking_is_deterministic(text: str, params: tuple[int, int]) -> None:
    size, overlap = params
    assert chunk_text(text, size, overlap) == chunk_text(str(text), size, overlap)


# --------------------------------------------------------------------------- boundaries


def test_prefers_a_paragraph_break_over_a_sentence_end() -> None:
    text = "First paragraph has. Two sentences here.\n\nSecond paragraph. Also two."
    assert chunk_text(text, size=50, overlap=0) == [
        "First paragraph has. Two sentences here.",
        "Second paragraph. Also two.",
    ]


def test_prefers_a_sentence_end_over_plain_whitespace() -> None:
    text = "One fairly short sentence here. Then a second sentence that runs long"
    assert chunk_text(text, size=44, overlap=0) == [
        "One fairly short sentence here.",
        "Then a second sentence that runs long",
    ]


def test_falls_back_to_whitespace_then_to_a_hard_cut() -> None:
    assert chunk_text("alpha beta gamma delta", size=12, overlap=0) == [
        "alpha beta",
        "gamma delta",
    ]
    assert chunk_text("abcdefghij", size=4, overlap=0) == ["abcd", "efgh", "ij"]


def test_overlap_starts_the_next_chunk_at_a_word_boundary() -> None:
    text = "one two three four five six seven eight nine ten"
    chunks = chunk_text(text, size=20, overlap=8)
    assert chunks == ["one two three four", "four five six seven", "seven eight nine ten"]


def test_short_text_is_one_stripped_chunk() -> None:
    assert chunk_text("  \n hello world \n ") == ["hello world"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t "])
def test_empty_or_blank_text_gives_no_chunks(text: str) -> None:
    assert chunk_text(text) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, 11), (10, -1), (-5, -10)])
def test_invalid_size_or_overlap_is_rejected(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("some text", size, overlap)


def test_size_one_without_overlap_yields_every_non_space_character() -> None:
    assert chunk_text("ab c", size=1, overlap=0) == ["a", "b", "c"]


def test_given_a_big_text_when_chunking_then_time_and_count_are_linear() -> None:
    paragraph = "This sentence is about ingestion. " * 20 + "\n\n"
    text = paragraph * 3000  # ~2 MB
    started = time.perf_counter()
    chunks = chunk_text(text, size=1000, overlap=100)
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"chunking 2 MB took {elapsed:.1f}s"
    # Each step advances by at least size // 2 - overlap characters.
    assert len(text) / 1000 <= len(chunks) <= len(text) / (1000 // 2 - 100) + 1


# --------------------------------------------------------------------------- hashing


def test_content_hash_is_sha256_hex_of_utf8() -> None:
    assert content_hash("héllo") == hashlib.sha256("héllo".encode()).hexdigest()
    assert content_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_content_hash_distinguishes_texts_and_accepts_lone_surrogates() -> None:
    assert content_hash("a") != content_hash("b")
    assert len(content_hash("\ud800")) == 64

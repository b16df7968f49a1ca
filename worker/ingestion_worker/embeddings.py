"""Turning chunks into vectors: an OpenAI-compatible client, or an offline stand-in.

The offline `HashingEmbedder` is the default when no API key is configured. It is
deterministic and needs no network, but it is NOT semantic: it hashes words into
a fixed-size vector, so only texts sharing words come out close. Use it for
development and tests, an embeddings API for real retrieval quality.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Protocol

import openai

from ingestion_worker.errors import EmbeddingError, IngestionError

_WORD = re.compile(r"\w+", re.UNICODE)


class EmbeddingRejectedError(IngestionError):
    """The embeddings API refused the request itself (bad model, bad key): retrying won't help."""

    retryable = False


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class HashingEmbedder:
    """Deterministic, offline, lexical (not semantic) embeddings by signed feature hashing."""

    model = "offline-hashing-v1"

    def __init__(self, dimensions: int = 256) -> None:
        if dimensions <= 0:
            raise ValueError("dimensions must be positive")
        self.dimensions = dimensions

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector


class OpenAIEmbedder:
    """Any OpenAI-compatible /v1/embeddings endpoint, in batches.

    The client's own retries are off: Temporal's retry policy (or the legacy
    path's loop) owns retrying, so attempts are counted in one place.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str | None,
        model: str,
        dimensions: int,
        batch_size: int,
        timeout: float,
    ) -> None:
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )
        self.model = model
        self.dimensions = dimensions
        self._batch_size = max(1, batch_size)

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(self._batch(texts[start : start + self._batch_size]))
        return vectors

    def _batch(self, batch: list[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(
                model=self.model, input=batch, dimensions=self.dimensions
            )
        except openai.RateLimitError as exc:
            raise EmbeddingError(f"embeddings rate-limited (429): {exc.message}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                raise EmbeddingError(f"embeddings API error {exc.status_code}") from exc
            raise EmbeddingRejectedError(
                f"embeddings API rejected the request ({exc.status_code}): {exc.message}"
            ) from exc
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise EmbeddingError(f"embeddings API unreachable: {exc}") from exc
        ordered = sorted(response.data, key=lambda item: item.index)
        if len(ordered) != len(batch):
            raise EmbeddingError(f"embeddings API returned {len(ordered)} vectors for {len(batch)}")
        return [list(item.embedding) for item in ordered]

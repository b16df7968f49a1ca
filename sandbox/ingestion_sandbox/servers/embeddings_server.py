"""A local OpenAI-compatible embeddings endpoint with fault injection.

The worker calls the embeddings API through the real `openai` client; offline,
there is no OpenAI to call, and a mocked client would not exercise the client's
own HTTP, retry and error handling. This is a real HTTP server (aiohttp, in a
thread with its own event loop) answering POST /v1/embeddings in the OpenAI
shape with deterministic unit vectors derived from the text (same text, same
vector), plus knobs for the tests: fail the next n requests with a status
(429 carries `retry-after: 0`), delay every answer, count requests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import socket
import struct
import threading
from typing import Any

from aiohttp import web

from ingestion_sandbox.servers.common import LOCALHOST, LoopThread, Service

DEFAULT_DIMENSIONS = 64
DEFAULT_MODEL = "local-embedding"

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A deterministic unit vector for `text` (sha256 in counter mode, mapped to [-1, 1])."""
    raw = b""
    counter = 0
    while len(raw) < 4 * dimensions:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [
        (value / 0xFFFFFFFF) * 2.0 - 1.0
        for (value,) in struct.iter_unpack("<I", raw[: 4 * dimensions])
    ]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(payload: Any) -> list[str]:
    """The `input` field as a list of strings (token arrays are hashed by their repr)."""
    value = payload.get("input") if isinstance(payload, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, int) for item in value):
            return [repr(value)]
        if all(isinstance(item, (str, list)) for item in value):
            return [item if isinstance(item, str) else repr(item) for item in value]
    raise ValueError("'input' must be a non-empty string or a non-empty list of strings")


def _error(status: int, message: str) -> web.Response:
    error_type, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "api_error", None)
    )
    headers = {"retry-after": "0"} if status == 429 else {}
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


class EmbeddingsServer(Service):
    """OpenAI-compatible POST /v1/embeddings on 127.0.0.1:P.

    Attributes: base_url ("http://127.0.0.1:P/v1"), port, request_count, requests (bodies).
    Knobs: fail_next(n, status=429), set_delay(seconds), reset().
    """

    name = "embeddings"

    def __init__(self, port: int = 0, default_dimensions: int = DEFAULT_DIMENSIONS) -> None:
        self.port = port
        self.default_dimensions = default_dimensions
        self.requests: list[Any] = []
        self._lock = threading.Lock()
        self._fail_remaining = 0
        self._fail_status = 429
        self._delay = 0.0
        self._request_count = 0
        self._loop: LoopThread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._request_count

    def fail_next(self, n: int, status: int = 429) -> None:
        """Answer the next `n` requests with `status` and an OpenAI-style error body."""
        with self._lock:
            self._fail_remaining = n
            self._fail_status = status

    def set_delay(self, seconds: float) -> None:
        """Delay every answer by `seconds` (to exercise client timeouts)."""
        with self._lock:
            self._delay = seconds

    def reset(self) -> None:
        with self._lock:
            self._fail_remaining = 0
            self._fail_status = 429
            self._delay = 0.0
            self._request_count = 0
            self.requests.clear()

    def _start(self) -> None:
        self._loop = LoopThread(f"{self.name}-server")
        self._loop.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOCALHOST, self.port))
        self.port = int(sock.getsockname()[1])
        self._runner = self._loop.run(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._handle_embeddings)
        app.router.add_get("/healthz", self._handle_health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return runner

    def _stop(self) -> None:
        if self._loop is not None:
            if self._runner is not None and self._loop.alive:
                self._loop.run(self._runner.cleanup())
            self._loop.stop()
        self._runner = None
        self._loop = None

    async def _handle_health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _handle_embeddings(self, request: web.Request) -> web.Response:
        try:
            payload: Any = await request.json()
        except ValueError:
            payload = None
        with self._lock:
            self._request_count += 1
            self.requests.append(payload)
            delay = self._delay
            fail_status = self._fail_status if self._fail_remaining > 0 else None
            self._fail_remaining = max(0, self._fail_remaining - 1)
        if delay:
            await asyncio.sleep(delay)
        if fail_status is not None:
            return _error(fail_status, f"Injected failure ({fail_status}) by the local server.")
        try:
            texts = _inputs(payload)
            dimensions = int(payload.get("dimensions") or self.default_dimensions)
            if dimensions <= 0:
                raise ValueError("'dimensions' must be positive")
        except (ValueError, TypeError, AttributeError) as exc:
            return _error(400, str(exc))
        base64_format = payload.get("encoding_format") == "base64"  # what the openai client asks
        data = []
        for index, text in enumerate(texts):
            vector = embed(text, dimensions)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if base64_format
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(max(1, len(text.split())) for text in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": payload.get("model") or DEFAULT_MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

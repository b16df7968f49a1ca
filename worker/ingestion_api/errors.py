"""One error shape for every answer the API refuses, and no 500 with a traceback.

Every error, ours or aiohttp's (unknown route, wrong method, body too large), is a JSON
object `{"error": <code>, "message": <text>}`: `error` is a stable machine-readable code
from `ErrorCode` (clients and the OpenAPI document rely on it), `message` is for people
and may change. A bug that escapes a handler is logged with its traceback and answered
as `internal`, without the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from aiohttp import web

log = logging.getLogger("ingestion_api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"  # 400: not JSON, not UTF-8, nested too deep
    INVALID_REQUEST = "invalid_request"  # 400: JSON of the wrong shape or with bad values
    UNAUTHORIZED = "unauthorized"  # 401
    BUCKET_NOT_ALLOWED = "bucket_not_allowed"  # 403
    NOT_FOUND = "not_found"  # 404: unknown document or route
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    BODY_TOO_LARGE = "body_too_large"  # 413
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415
    OVERLOADED = "overloaded"  # 429
    INTERNAL = "internal"  # 500: a bug; the log has the traceback
    TEMPORAL_UNAVAILABLE = "temporal_unavailable"  # 503
    JOURNAL_UNAVAILABLE = "journal_unavailable"  # 503: acceptance could not be recorded
    NOT_READY = "not_ready"  # 503 from /readyz


_BY_STATUS = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.BUCKET_NOT_ALLOWED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


class ApiError(Exception):
    """A refusal with its status and code; raised anywhere below a handler."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": self.code.value, "message": self.message}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def retry_later(status: int, code: ErrorCode, message: str, seconds: int) -> ApiError:
    """A 429/503 refusal telling the client when to try again."""
    return ApiError(status, code, message, {"Retry-After": str(seconds)})


def unauthorized(message: str) -> ApiError:
    return ApiError(401, ErrorCode.UNAUTHORIZED, message, {"WWW-Authenticate": "Bearer"})


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (404 route, 405, 413) in our shape, keeping their headers."""
    code = _BY_STATUS.get(exc.status, ErrorCode.INTERNAL)
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    message = exc.reason if exc.status != 404 else "no such endpoint"
    return ApiError(exc.status, code, message, headers or None).response()


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: every error leaves as `{"error", "message"}` JSON."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return ApiError(500, ErrorCode.INTERNAL, "internal error (logged)").response()

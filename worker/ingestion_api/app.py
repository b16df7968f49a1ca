"""The HTTP face of the router (aiohttp).

aiohttp because the project already depends on it (kopf runs on it), it is a
well-kept asyncio server with low per-request overhead, and the Temporal client
is asyncio too: one event loop, no ASGI adapter in between.

Handlers only translate HTTP to `IngestionService` calls and refusals to `ApiError`s;
status reads, `?wait=` and batch status are answered by `status_reader.py` through the
service;
`errors.json_errors` turns every error into the one JSON shape, and `openapi.py`
documents every endpoint, body and answer (served at GET /openapi.json).
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
from datetime import timedelta
from typing import Any

from aiohttp import web
from ingestion_worker.errors import ValidationError
from ingestion_worker.models import IngestDocumentInput
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingestion_api.errors import (
    ApiError,
    ErrorCode,
    Handler,
    json_errors,
    retry_later,
    unauthorized,
)
from ingestion_api.journal import JournalError
from ingestion_api.metrics import REJECTED
from ingestion_api.openapi import openapi_json
from ingestion_api.service import Accepted, IngestionService, Overloaded
from ingestion_api.settings import ApiSettings
from ingestion_api.status_reader import TemporalUnavailable
from ingestion_api.status_view import StatusView, parse_wait
from ingestion_api.validation import (
    BucketPolicy,
    batch_items,
    check_media_type,
    decode_json,
    invalid,
    parse_document,
    status_key,
)

log = logging.getLogger("ingestion_api")

SERVICE = web.AppKey("service", IngestionService)
SETTINGS = web.AppKey("settings", ApiSettings)
POLICY = web.AppKey("policy", BucketPolicy)


def _accepted_body(accepted: Accepted) -> dict[str, Any]:
    return {
        "document_id": accepted.document_id,
        "source": accepted.source,
        "path": accepted.path.value,
        "shadow": accepted.shadow,
        "duplicate": accepted.duplicate,
        "status_url": f"/v1/documents/{accepted.source}/{accepted.document_id}",
    }


async def _json_body(request: web.Request) -> Any:
    check_media_type(request.content_type)
    return decode_json(await request.read())  # read() raises 413 past client_max_size


def _document(app: web.Application, body: Any) -> IngestDocumentInput:
    """A valid document request whose location the bucket allow-list admits."""
    document = parse_document(body)
    bucket, key = app[SERVICE].pipeline.locate(
        document.document_id, document.source, document.bucket, document.key
    )
    app[POLICY].check(bucket, key)
    return document


async def _submit(app: web.Application, document: IngestDocumentInput) -> Accepted:
    """The service's refusals as API errors, each counted by reason."""
    retry = app[SETTINGS].retry_after_seconds
    try:
        return await app[SERVICE].submit(document)
    except ValidationError as exc:
        raise invalid(str(exc)) from None
    except Overloaded as exc:
        REJECTED.labels("in_flight").inc()
        raise retry_later(429, ErrorCode.OVERLOADED, f"overloaded: {exc}", retry) from None
    except TemporalUnavailable as exc:
        REJECTED.labels(f"temporal_{exc.reason}").inc()
        message = f"Temporal unavailable: {exc}"
        raise retry_later(503, ErrorCode.TEMPORAL_UNAVAILABLE, message, retry) from None
    except (JournalError, sqlite3.Error) as exc:
        REJECTED.labels("journal_unavailable").inc()
        log.exception("journal write failed; refusing %s/%s", document.source, document.document_id)
        message = f"cannot record the document durably: {exc}"
        raise retry_later(503, ErrorCode.JOURNAL_UNAVAILABLE, message, retry) from None


async def submit_document(request: web.Request) -> web.Response:
    document = _document(request.app, await _json_body(request))
    accepted = await _submit(request.app, document)
    return web.json_response(_accepted_body(accepted), status=202)


async def submit_batch(request: web.Request) -> web.Response:
    """A wrong batch is refused whole (400); a wrong item only in its own result."""
    items = batch_items(await _json_body(request), request.app[SETTINGS].max_batch)
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            accepted = await _submit(request.app, _document(request.app, item))
            results.append({"index": index, "status": 202, **_accepted_body(accepted)})
        except ApiError as exc:
            document_id = item.get("document_id") if isinstance(item, dict) else None
            results.append(
                {
                    "index": index,
                    "status": exc.status,
                    "document_id": document_id if isinstance(document_id, str) else None,
                    **exc.body(),
                }
            )
    refused = any(r["status"] in (429, 503) for r in results)
    retry = request.app[SETTINGS].retry_after_seconds
    headers = {"Retry-After": str(retry)} if refused else None
    return web.json_response({"results": results}, status=207, headers=headers)


def _wait_seconds(request: web.Request) -> float:
    """`?wait=` in seconds (0 without it), capped at API_MAX_WAIT_SECONDS; 400 if malformed."""
    text = request.query.get("wait")
    if text is None:
        return 0.0
    try:
        return parse_wait(text, request.app[SETTINGS].max_wait_seconds)
    except ValueError as exc:
        raise invalid(str(exc)) from None


def _read_error(app: web.Application, exc: Exception) -> ApiError:
    """A status read that could not be answered: 503 with Retry-After."""
    retry = app[SETTINGS].retry_after_seconds
    if isinstance(exc, TemporalUnavailable):
        message = f"Temporal unavailable: {exc}"
        return retry_later(503, ErrorCode.TEMPORAL_UNAVAILABLE, message, retry)
    message = f"cannot read the journal: {exc}"
    return retry_later(503, ErrorCode.JOURNAL_UNAVAILABLE, message, retry)


def _not_found(source: str, document_id: str) -> ApiError:
    return ApiError(
        404,
        ErrorCode.NOT_FOUND,
        f"no ingestion known for {source}/{document_id} on this replica or in Temporal",
    )


async def document_status(request: web.Request) -> web.Response:
    """One document's status; with `?wait=`, once it finishes or the wait ends."""
    source, document_id = request.match_info["source"], request.match_info["document_id"]
    wait = _wait_seconds(request)
    try:
        view = await request.app[SERVICE].status(source, document_id, wait)
    except ValidationError as exc:
        raise invalid(str(exc)) from None
    except (TemporalUnavailable, sqlite3.Error) as exc:
        raise _read_error(request.app, exc) from None
    if view is None:
        raise _not_found(source, document_id)
    return web.json_response(view.body(source, document_id))


async def batch_status(request: web.Request) -> web.Response:
    """Many documents' statuses in one call; each item answers 200, 400, 404 or 503."""
    app = request.app
    items = batch_items(await _json_body(request), app[SETTINGS].max_status_batch)
    keys: dict[int, tuple[str, str]] = {}
    results: list[dict[str, Any]] = [{} for _ in items]
    for index, item in enumerate(items):
        try:
            keys[index] = status_key(item)
        except ApiError as exc:
            results[index] = {"index": index, "http_status": exc.status, **exc.body()}
    views = await app[SERVICE].statuses(list(keys.values()))
    for (index, (source, document_id)), view in zip(keys.items(), views, strict=True):
        results[index] = _batch_result(app, index, source, document_id, view)
    unavailable = any(r["http_status"] == 503 for r in results)
    headers = {"Retry-After": str(app[SETTINGS].retry_after_seconds)} if unavailable else None
    return web.json_response({"results": results}, headers=headers)


def _batch_result(
    app: web.Application,
    index: int,
    source: str,
    document_id: str,
    view: StatusView | Exception | None,
) -> dict[str, Any]:
    if isinstance(view, StatusView):
        return {"index": index, "http_status": 200, **view.body(source, document_id)}
    error = _not_found(source, document_id) if view is None else _read_error(app, view)
    body = {"document_id": document_id, "source": source, **error.body()}
    return {"index": index, "http_status": error.status, **body}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready only when Temporal answers and the routing source has synced."""
    service = request.app[SERVICE]
    problems = []
    if not service.routing.ready:
        problems.append(f"routing source not ready ({service.routing.describe()})")
    try:
        await service.temporal.service_client.check_health(timeout=timedelta(seconds=2))
    except Exception as exc:
        problems.append(f"Temporal unreachable: {exc}")
    if problems:
        body = ApiError(503, ErrorCode.NOT_READY, "; ".join(problems)).body()
        return web.json_response({**body, "ready": False, "problems": problems}, status=503)
    journal = service.journal
    return web.json_response(
        {
            "ready": True,
            "routing": service.routing.describe(),
            "journal": {"path": journal.path, "durable": journal.durable},
        }
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = openapi_json(
        bool(settings.auth_token),
        settings.max_batch,
        settings.max_status_batch,
        settings.max_wait_seconds,
    )
    return web.Response(body=body, content_type="application/json")


def bearer_matches(header: str | None, token: str) -> bool:
    """`Bearer <token>`, the scheme case-insensitive (RFC 7235), compared in constant time."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:  # aiohttp keeps undecodable header bytes as surrogates: give them back as bytes
        given = credentials.strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, token.encode("utf-8"))


#: POST, but a read: open like the other reads.
READ_POSTS = frozenset({"/v1/documents:status"})


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Write endpoints need `Authorization: Bearer <token>` when a token is configured."""
    token = request.app[SETTINGS].auth_token
    given = request.headers.get("Authorization")
    writes = request.method == "POST" and request.path not in READ_POSTS
    if token and writes and not bearer_matches(given, token):
        raise unauthorized("missing or wrong bearer token")
    return await handler(request)


async def _end_waits(app: web.Application) -> None:
    """Shutting down: pending `?wait=` reads answer now (their clients wait elsewhere)."""
    app[SERVICE].reader.close()


def make_app(service: IngestionService, settings: ApiSettings) -> web.Application:
    app = web.Application(
        middlewares=[json_errors, bearer_auth], client_max_size=settings.max_body_bytes
    )
    app[SERVICE], app[SETTINGS] = service, settings
    app[POLICY] = BucketPolicy.parse(
        settings.allowed_buckets, service.pipeline.settings.documents_bucket
    )
    app.router.add_post("/v1/documents", submit_document)
    app.router.add_post("/v1/documents:batch", submit_batch)
    app.router.add_post("/v1/documents:status", batch_status)
    app.router.add_get("/v1/documents/{source}/{document_id}", document_status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.on_shutdown.append(_end_waits)
    return app

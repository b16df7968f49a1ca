"""The HTTP face of the router (aiohttp).

aiohttp because the project already depends on it (kopf runs on it), it is a
well-kept asyncio server with low per-request overhead, and the Temporal client
is asyncio too: one event loop, no ASGI adapter in between.

Handlers only translate HTTP to `IngestionService` calls and errors to status codes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from ingestion_worker.errors import ValidationError
from ingestion_worker.models import IngestDocumentInput
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from temporalio.service import RPCError

from ingestion_api.metrics import REJECTED
from ingestion_api.service import Accepted, IngestionService, Overloaded
from ingestion_api.settings import ApiSettings

SERVICE = web.AppKey("service", IngestionService)
SETTINGS = web.AppKey("settings", ApiSettings)
_FIELDS = {"document_id", "source", "bucket", "key"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response({"error": message}, status=status, headers=headers)


def _parse_document(body: Any) -> IngestDocumentInput:
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise ValidationError(f"unknown fields: {sorted(unknown)}")
    for name in ("bucket", "key"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ValidationError(f"{name} must be a string")
    return IngestDocumentInput(
        document_id=body.get("document_id"),  # type: ignore[arg-type]  # validated next
        source=body.get("source"),  # type: ignore[arg-type]
        bucket=body.get("bucket"),
        key=body.get("key"),
    )


def _accepted_body(accepted: Accepted) -> dict[str, Any]:
    return {
        "document_id": accepted.document_id,
        "source": accepted.source,
        "path": accepted.path.value,
        "shadow": accepted.shadow,
        "duplicate": accepted.duplicate,
        "status_url": f"/v1/documents/{accepted.source}/{accepted.document_id}",
    }


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"body is not JSON: {exc}") from exc


async def submit_document(request: web.Request) -> web.Response:
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    try:
        accepted = await service.submit(_parse_document(await _json(request)))
    except ValidationError as exc:
        return _error(400, str(exc))
    except Overloaded as exc:
        REJECTED.labels("in_flight").inc()
        return _error(429, f"overloaded: {exc}", settings.retry_after_seconds)
    except RPCError as exc:  # Temporal unreachable: nothing was accepted
        REJECTED.labels("temporal_unavailable").inc()
        return _error(503, f"Temporal unavailable: {exc}", settings.retry_after_seconds)
    return web.json_response(_accepted_body(accepted), status=202)


async def submit_batch(request: web.Request) -> web.Response:
    """Each document is accepted or refused on its own: 207-style per-item results."""
    service, settings = request.app[SERVICE], request.app[SETTINGS]
    try:
        body = await _json(request)
        items = body.get("documents") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ValidationError('body must be {"documents": [...]} with at least one item')
        if len(items) > settings.max_batch:
            raise ValidationError(f"at most {settings.max_batch} documents per batch")
        requests = [_parse_document(item) for item in items]
    except ValidationError as exc:
        return _error(400, str(exc))
    results: list[dict[str, Any]] = []
    for item in requests:
        try:
            results.append({"status": 202, **_accepted_body(await service.submit(item))})
        except ValidationError as exc:
            results.append({"status": 400, "error": str(exc), "document_id": item.document_id})
        except Overloaded as exc:
            REJECTED.labels("in_flight").inc()
            results.append({"status": 429, "error": str(exc), "document_id": item.document_id})
        except RPCError as exc:
            REJECTED.labels("temporal_unavailable").inc()
            results.append({"status": 503, "error": str(exc), "document_id": item.document_id})
    refused = any(r["status"] in (429, 503) for r in results)
    headers = {"Retry-After": str(settings.retry_after_seconds)} if refused else None
    return web.json_response({"results": results}, status=207, headers=headers)


async def document_status(request: web.Request) -> web.Response:
    source, document_id = request.match_info["source"], request.match_info["document_id"]
    try:
        status = await request.app[SERVICE].status(source, document_id)
    except ValidationError as exc:
        return _error(400, str(exc))
    except RPCError as exc:
        return _error(
            503, f"Temporal unavailable: {exc}", request.app[SETTINGS].retry_after_seconds
        )
    if status is None:
        return _error(404, f"no ingestion known for {source}/{document_id}")
    return web.json_response({"document_id": document_id, "source": source, **status})


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
        return web.json_response({"ready": False, "problems": problems}, status=503)
    return web.json_response({"ready": True, "routing": service.routing.describe()})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Write endpoints need `Authorization: Bearer <token>` when a token is configured."""
    token = request.app[SETTINGS].auth_token
    if token and request.method == "POST":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token")
    return await handler(request)


def make_app(service: IngestionService, settings: ApiSettings) -> web.Application:
    app = web.Application(middlewares=[bearer_auth], client_max_size=1024 * 1024)
    app[SERVICE], app[SETTINGS] = service, settings
    app.router.add_post("/v1/documents", submit_document)
    app.router.add_post("/v1/documents:batch", submit_batch)
    app.router.add_get("/v1/documents/{source}/{document_id}", document_status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app

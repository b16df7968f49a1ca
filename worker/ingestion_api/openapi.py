"""The API's OpenAPI 3.0 document, served at GET /openapi.json.

Hand-written, so that it says what the API promises rather than what a framework
infers, but built from the same facts the code uses: the id patterns of
`ingestion_worker.models`, the error codes of `errors.ErrorCode`, the field sets and
limits of `validation`. The schemathesis fuzz test (tests/integration/api/test_fuzz.py)
sends generated requests against it and fails on any 5xx or any answer the document
does not describe, so the document and the code cannot drift apart silently.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from ingestion_worker.models import _DOCUMENT_ID, _SOURCE, IngestionPath, IngestionStatus
from ingestion_worker.steps import STEPS

from ingestion_api.errors import ErrorCode
from ingestion_api.status_view import WAIT_PATTERN
from ingestion_api.validation import MAX_KEY_CHARS

JSON = "application/json"
_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str, headers: Any = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The scheme to use: Bearer.",
        "required": True,
        "schema": {"type": "string"},
    }
}


def _error(description: str, headers: Any = None) -> dict[str, Any]:
    return _json(_ref("Error"), description, headers)


_ERRORS = {
    "400": _error("Malformed request: `invalid_json` or `invalid_request`."),
    "401": _error("Missing or wrong bearer token (when the API has one).", _AUTHENTICATE),
    "413": _error("Body larger than API_MAX_BODY_BYTES."),
    "415": _error("Content-Type is not JSON."),
    "429": _error("Too many documents in flight (API_MAX_IN_FLIGHT).", _RETRY_AFTER),
    "503": _error(
        "Temporal did not answer within API_TEMPORAL_TIMEOUT_SECONDS, or the journal "
        "could not record the document. Nothing was accepted.",
        _RETRY_AFTER,
    ),
}

_DOCUMENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["document_id", "source"],
    "properties": {
        "document_id": {"type": "string", "pattern": _DOCUMENT_ID.pattern},
        "source": {"type": "string", "pattern": _SOURCE.pattern},
        "bucket": {
            "type": "string",
            "nullable": True,
            "description": "Default DOCUMENTS_BUCKET; must be in API_ALLOWED_BUCKETS (else 403).",
        },
        "key": {
            "type": "string",
            "nullable": True,
            "maxLength": MAX_KEY_CHARS,
            "pattern": "^[^\\u0000-\\u001f\\u007f]*$",
            "description": "Default {DOCUMENTS_PREFIX}/{source}/{document_id}.",
        },
    },
}
_ACCEPTED = {
    "type": "object",
    "required": ["document_id", "source", "path", "shadow", "duplicate", "status_url"],
    "properties": {
        "document_id": {"type": "string"},
        "source": {"type": "string"},
        "path": {"type": "string", "enum": [p.value for p in IngestionPath]},
        "shadow": {"type": "boolean", "description": "Also run on the other path, compared."},
        "duplicate": {"type": "boolean", "description": "Already running: the same handle."},
        "status_url": {"type": "string"},
    },
}
_STATUS_FIELDS = ["path", "status", "step", "timings", "error_type", "error_message"]
_STATUS_PROPERTIES = {
    "document_id": {"type": "string"},
    "source": {"type": "string"},
    "path": {"type": "string", "enum": [p.value for p in IngestionPath]},
    "status": {
        "type": "string",
        "description": "One of "
        + ", ".join(s.value for s in IngestionStatus)
        + "; while a failed step waits for its next attempt: retrying: <error type>: "
        "<message> (attempt n in s).",
    },
    "step": {
        "type": "string",
        "nullable": True,
        "enum": [step.name for step in STEPS] + [None],
        "description": "The step running now; for a failed document the last step it ran.",
    },
    "timings": {
        "type": "array",
        "description": "Seconds each pipeline step took so far, in order.",
        "items": {
            "type": "object",
            "required": ["step", "seconds"],
            "properties": {"step": {"type": "string"}, "seconds": {"type": "number"}},
        },
    },
    "error_type": {"type": "string", "nullable": True},
    "error_message": {"type": "string", "nullable": True},
}
_STATUS = {
    "type": "object",
    "required": ["document_id", "source", *_STATUS_FIELDS],
    "properties": _STATUS_PROPERTIES,
}
_STATUS_RESULT = {
    "type": "object",
    "required": ["index", "http_status"],
    "description": "http_status 200 with the Status fields, or 400/404/503 with the Error "
    "fields (and the document's source and id when they were readable).",
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "http_status": {"type": "integer", "enum": [200, 400, 404, 503]},
        **_STATUS_PROPERTIES,
        "document_id": {"type": "string", "nullable": True},
        "source": {"type": "string", "nullable": True},
        "error": {"type": "string", "enum": [c.value for c in ErrorCode]},
        "message": {"type": "string"},
    },
}
_BATCH_RESULT = {
    "type": "object",
    "required": ["index", "status"],
    "description": "202 with the accepted fields, or a 4xx/5xx status with the Error fields.",
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "status": {"type": "integer", "enum": [202, 400, 403, 429, 503]},
        **_ACCEPTED["properties"],  # type: ignore[dict-item]
        "document_id": {"type": "string", "nullable": True},
        "error": {"type": "string", "enum": [c.value for c in ErrorCode]},
        "message": {"type": "string"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "enum": [c.value for c in ErrorCode]},
        "message": {"type": "string"},
    },
}


def _path_parameter(name: str, pattern: str) -> dict[str, Any]:
    schema = {"type": "string", "pattern": pattern}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _paths(max_batch: int, max_status_batch: int, max_wait: float) -> dict[str, Any]:
    batch = {
        "type": "object",
        "additionalProperties": False,
        "required": ["documents"],
        "properties": {
            "documents": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_batch,
                "items": {"description": "A document; a wrong one is refused in its result."},
            }
        },
    }
    return {
        "/v1/documents": {"post": _submit_operation()},
        "/v1/documents:batch": {"post": _batch_operation(batch)},
        "/v1/documents:status": {"post": _batch_status_operation(max_status_batch)},
        "/v1/documents/{source}/{document_id}": {"get": _status_operation(max_wait)},
        "/healthz": {"get": _simple("Liveness.", {"type": "object"})},
        "/readyz": {"get": _readyz_operation()},
        "/metrics": {"get": _metrics_operation()},
        "/openapi.json": {"get": _simple("This document.", {"type": "object"})},
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _submit_operation() -> dict[str, Any]:
    return {
        "operationId": "submitDocument",
        "summary": "Ingest one document on the path the routing percentage picks.",
        "requestBody": _body(_ref("Document")),
        "responses": {
            "202": _json(_ref("Accepted"), "Accepted: it will be ingested, even across restarts."),
            "403": _error("The bucket/key is outside API_ALLOWED_BUCKETS."),
            **_ERRORS,
        },
    }


def _batch_operation(batch: dict[str, Any]) -> dict[str, Any]:
    results = {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": _ref("BatchResult")}},
    }
    return {
        "operationId": "submitBatch",
        "summary": "Ingest several documents; each is accepted or refused on its own.",
        "description": "A wrong batch (not JSON, not {documents: [...]}, empty, too long) is "
        "refused whole with 400. A wrong item is refused in its own result (status and the "
        "Error fields), and the other items go on.",
        "requestBody": _body(batch),
        "responses": {
            "207": _json(results, "One result per item, in order (Retry-After if any 429/503)."),
            **{k: v for k, v in _ERRORS.items() if k not in ("429", "503")},
        },
    }


def _status_operation(max_wait: float) -> dict[str, Any]:
    wait = {
        "name": "wait",
        "in": "query",
        "required": False,
        "description": "Answer once the document is completed or failed, or when this "
        f"duration ends (at most {max_wait:g} s: API_MAX_WAIT_SECONDS), with its status "
        "then. Seconds, or with a unit: 500ms, 30s, 1m.",
        "schema": {"type": "string", "pattern": WAIT_PATTERN},
    }
    return {
        "operationId": "documentStatus",
        "summary": "A document's current status on the path it took.",
        "description": "Finished documents are answered from the API's journal or Temporal's "
        "record of the closed workflow, without a worker; an open workflow's get_status query "
        "is shared by concurrent reads and reused for API_STATUS_REUSE_SECONDS.",
        "parameters": [
            _path_parameter("source", _SOURCE.pattern),
            _path_parameter("document_id", _DOCUMENT_ID.pattern),
            wait,
        ],
        "responses": {
            "200": _json(_ref("Status"), "The status."),
            "400": _error("Malformed source, document id or wait."),
            "404": _error("Unknown to this replica's journal and to Temporal."),
            "503": _error(
                "Temporal did not answer in time, or the journal could not be read.", _RETRY_AFTER
            ),
        },
    }


def _batch_status_operation(max_status_batch: int) -> dict[str, Any]:
    batch = {
        "type": "object",
        "additionalProperties": False,
        "required": ["documents"],
        "properties": {
            "documents": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_status_batch,
                "items": {
                    "description": "{source, document_id}; a wrong one is refused in its "
                    "result, and the others are answered."
                },
            }
        },
    }
    results = {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": _ref("StatusResult")}},
    }
    unavailable = "One result per document, in order (Retry-After when any is 503)."
    return {
        "operationId": "batchStatus",
        "summary": "Several documents' statuses in one call (a read: no token needed).",
        "description": "A wrong batch (not JSON, not {documents: [...]}, empty, over "
        "API_MAX_STATUS_BATCH) is refused whole with 400; a wrong or unknown document only "
        "in its own result.",
        "requestBody": _body(batch),
        "responses": {
            "200": _json(results, unavailable),
            **{k: v for k, v in _ERRORS.items() if k in ("400", "413", "415")},
        },
    }


def _simple(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "responses": {"200": _json(schema, "OK")}}


def _readyz_operation() -> dict[str, Any]:
    not_ready = {"allOf": [_ref("Error")], "properties": {"problems": {"type": "array"}}}
    return {
        "summary": "Readiness: Temporal answers and the routing source has synced.",
        "responses": {
            "200": _json({"type": "object", "required": ["ready"]}, "Ready."),
            "503": _json(not_ready, "Not ready, with the problems."),
        },
    }


def _metrics_operation() -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "summary": "Prometheus metrics.",
        "responses": {"200": {"description": "Prometheus text format.", "content": text}},
    }


def document(
    auth: bool, max_batch: int, max_status_batch: int = 1000, max_wait: float = 60.0
) -> dict[str, Any]:
    """The document for an API with (or without) a bearer token and these limits."""
    spec: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "apex ingestion API", "version": "1"},
        "paths": _paths(max_batch, max_status_batch, max_wait),
        "components": {
            "schemas": {
                "Document": _DOCUMENT,
                "Accepted": _ACCEPTED,
                "Status": _STATUS,
                "StatusResult": _STATUS_RESULT,
                "BatchResult": _BATCH_RESULT,
                "Error": _ERROR,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    if auth:  # writes need the token; reads stay open
        for path in ("/v1/documents", "/v1/documents:batch"):
            spec["paths"][path]["post"]["security"] = [{"bearer": []}]
    return spec


@functools.cache
def openapi_json(auth: bool, max_batch: int, max_status_batch: int, max_wait: float) -> bytes:
    return json.dumps(document(auth, max_batch, max_status_batch, max_wait), indent=1).encode()

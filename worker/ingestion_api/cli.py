"""`ingestion`: a thin command-line client for the ingestion API (stdlib only).

    ingestion [--api URL] [--token T] ingest SOURCE DOCUMENT_ID [--bucket B] [--key K] [--wait]
    ingestion status SOURCE DOCUMENT_ID [--wait] [--timeout SECONDS]
    ingestion batch SOURCE [--file F | DOCUMENT_ID ...]

--wait asks the API to answer when the document finishes (GET ...?wait=30s, repeated
until --timeout), so waiting costs one request per 30 s rather than a poll per tick; an
API that restarts meanwhile (connection lost, 503) is asked again until the timeout.

Exit codes: 0 success; 1 the document failed (or a batch item was refused);
2 the request was refused (400, 401, other client errors); 3 unknown document (404
on status); 4 try again later (429, 503, other server errors, API unreachable, or
--wait timed out).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

DEFAULT_API = "http://localhost:8080"
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_NOT_FOUND, EXIT_RETRY = 0, 1, 2, 3, 4
_FINAL = {"completed", "failed"}
_RETRYABLE_STATUS = {429, 502, 503, 504}
#: One long-poll's length; the API caps it at its API_MAX_WAIT_SECONDS anyway.
WAIT_SLICE_SECONDS = 30.0


class ApiError(Exception):
    """An HTTP error answer (or no answer at all: status 0) from the API."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @property
    def exit_code(self) -> int:
        """4 when retrying later may help (429/5xx/unreachable), else 2."""
        if self.status == 0 or self.status in _RETRYABLE_STATUS or self.status >= 500:
            return EXIT_RETRY
        return EXIT_REFUSED

    def describe(self) -> str:
        """One line for stderr, with the Retry-After hint when the API sent one."""
        where = f"HTTP {self.status}" if self.status else "connection failed"
        text = f"error: {where}: {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after} s)"
        elif self.exit_code == EXIT_RETRY:
            text += " (retry later)"
        return text


class Client:
    """JSON over HTTP to one API base URL, with an optional bearer token."""

    def __init__(self, api: str, token: str | None, timeout: float = 30.0) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON) or raise ApiError."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.api + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            raise _api_error(exc) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)  # (HTTPException: the API died mid-answer)
            raise ApiError(0, f"cannot reach {self.api}: {reason}") from None


def _decode(raw: bytes) -> Any:
    """The body as JSON, or as text when it is not JSON."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _api_error(exc: urllib.error.HTTPError) -> ApiError:
    """The API's {"error": code, "message": text} (or the raw body) of an HTTP error answer."""
    body = _decode(exc.read())
    message = _error_text(body) if isinstance(body, dict) else None
    return ApiError(exc.code, message or str(body or exc.reason), exc.headers.get("Retry-After"))


def _error_text(body: dict[str, Any]) -> str | None:
    """`message (code)` from the API's error shape."""
    if "message" in body:
        return f"{body['message']} ({body.get('error')})"
    return str(body["error"]) if "error" in body else None


def _document_path(source: str, document_id: str) -> str:
    quote = urllib.parse.quote
    return f"/v1/documents/{quote(source, safe='')}/{quote(document_id, safe='')}"


def _document_body(
    source: str, document_id: str, bucket: str | None, key: str | None
) -> dict[str, str]:
    """A document's JSON, leaving out the optional fields that are not set."""
    body = {"source": source, "document_id": document_id}
    if bucket:
        body["bucket"] = bucket
    if key:
        body["key"] = key
    return body


def cmd_ingest(client: Client, args: argparse.Namespace) -> int:
    """POST one document; with --wait, poll its status until it finishes."""
    body = _document_body(args.source, args.document_id, args.bucket, args.key)
    _, accepted = client.request("POST", "/v1/documents", body)
    note = " (already running)" if accepted.get("duplicate") else ""
    print(f"accepted {args.source}/{args.document_id}: path={accepted.get('path')}{note}")
    print(f"status: {client.api}{accepted.get('status_url')}")
    if not args.wait:
        return EXIT_OK
    return _wait(client, args.source, args.document_id, args.interval, args.timeout)


def wait_for(
    client: Client,
    source: str,
    document_id: str,
    interval: float,
    timeout: float,
    *,
    unknown_ends: bool = False,
) -> dict[str, Any] | None:
    """The document's status once it finished, or None after `timeout`; each unfinished
    status it passes through is printed. Long-polls with ?wait=; a lost connection or a
    5xx/429 (an API restarting) is asked again `interval` later, and so is a 404 (a document
    just posted, not visible yet) unless `unknown_ends` (then the 404 is raised)."""
    deadline = time.monotonic() + timeout
    last, wait = None, 0.0  # the first read answers at once: the status is shown meanwhile
    while (left := deadline - time.monotonic()) > 0:
        path = _document_path(source, document_id) + (f"?wait={wait:.3f}s" if wait else "")
        asked = time.monotonic()
        try:
            _, view = client.request("GET", path, timeout=wait + client.timeout)
        except ApiError as exc:
            retry = not unknown_ends if exc.status == 404 else exc.exit_code == EXIT_RETRY
            if not retry:
                raise
            view = {"status": "unknown" if exc.status == 404 else "unreachable"}
        if view.get("status") in _FINAL:
            return view
        if view.get("status") != last:
            last = view.get("status")
            print(f"status: {last}", flush=True)
        if wait and time.monotonic() - asked < wait / 2:  # answered early (API shutting down)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        wait = min(left, WAIT_SLICE_SECONDS)
    return None


def _wait(client: Client, source: str, document_id: str, interval: float, timeout: float) -> int:
    """Wait until completed (0) or failed (1); 4 when `timeout` passes."""
    view = wait_for(client, source, document_id, interval, timeout)
    if view is None:
        print(f"error: {source}/{document_id} not finished after {timeout:g} s", file=sys.stderr)
        return EXIT_RETRY
    print(f"status: {view.get('status')}")
    _print_error(view)
    return EXIT_OK if view.get("status") == "completed" else EXIT_FAILED


def _print_error(view: dict[str, Any]) -> None:
    """The error fields of a status view, when there are any."""
    if view.get("error_type") or view.get("error_message"):
        print(f"error: {view.get('error_type')}: {view.get('error_message')}")


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    """One document's status (with --wait, once it finished): 0 unless it failed (1), is
    unknown (3) or did not finish within --timeout (4)."""
    key = (args.source, args.document_id)
    try:
        if args.wait:
            found = wait_for(client, *key, args.interval, args.timeout, unknown_ends=True)
        else:
            _, found = client.request("GET", _document_path(*key))
    except ApiError as exc:
        if exc.status != 404:
            raise
        print(f"not found: {exc.message}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if found is None:
        print(f"error: {'/'.join(key)} not finished after {args.timeout:g} s", file=sys.stderr)
        return EXIT_RETRY
    view: dict[str, Any] = found
    _print_view(view)
    return EXIT_FAILED if view.get("status") == "failed" else EXIT_OK


def _print_view(view: dict[str, Any]) -> None:
    print(f"status: {view.get('status')}")
    print(f"path: {view.get('path')}")
    print(f"step: {view.get('step') or '-'}")
    timings = view.get("timings") or []
    steps = ", ".join(f"{t.get('step')} {float(t.get('seconds', 0)):.3f} s" for t in timings)
    print(f"timings: {steps or '-'}")
    print(f"error: {view.get('error_type') or '-'}: {view.get('error_message') or '-'}")


def read_batch_file(path: str, source: str) -> list[dict[str, str]]:
    """Documents from a file: one id per line, or JSON lines {document_id, key?, bucket?}."""
    documents = []
    with open(path, encoding="utf-8") if path != "-" else sys.stdin as lines:
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not line.startswith("{"):
                documents.append(_document_body(source, line, None, None))
                continue
            item = json.loads(line)
            if not isinstance(item, dict) or "document_id" not in item:
                raise ValueError(f"{path}:{number}: a JSON line needs a document_id")
            documents.append(
                _document_body(source, item["document_id"], item.get("bucket"), item.get("key"))
            )
    return documents


def cmd_batch(client: Client, args: argparse.Namespace) -> int:
    """POST a batch; print each item's result; 0 only when every item was accepted."""
    if args.file:
        documents = read_batch_file(args.file, args.source)
    else:
        documents = [_document_body(args.source, d, None, None) for d in args.document_ids]
    if not documents:
        print("error: no documents given (DOCUMENT_ID ... or --file F)", file=sys.stderr)
        return EXIT_REFUSED
    _, answer = client.request("POST", "/v1/documents:batch", {"documents": documents})
    results = answer.get("results", [])
    accepted = 0
    for item in results:
        if item.get("status") == 202:
            accepted += 1
            note = " (already running)" if item.get("duplicate") else ""
            print(f"accepted {item.get('document_id')}: path={item.get('path')}{note}")
        else:
            reason = _error_text(item) or "refused"
            where = f"#{item.get('index')} {item.get('document_id')}"
            print(f"refused {where}: {item.get('status')} {reason}")
    print(f"{accepted}/{len(documents)} accepted")
    return EXIT_OK if accepted == len(documents) == len(results) else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: global --api/--token, then one subcommand."""
    parser = argparse.ArgumentParser(prog="ingestion", description=__doc__.split("\n")[0])
    parser.add_argument("--api", default=os.environ.get("INGESTION_API_URL", DEFAULT_API))
    parser.add_argument("--token", default=os.environ.get("INGESTION_API_TOKEN"))
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="submit one document")
    ingest.add_argument("source")
    ingest.add_argument("document_id")
    ingest.add_argument("--bucket")
    ingest.add_argument("--key")
    _wait_arguments(ingest)
    ingest.set_defaults(run=cmd_ingest)
    status = commands.add_parser("status", help="show one document's status")
    status.add_argument("source")
    status.add_argument("document_id")
    _wait_arguments(status)
    status.set_defaults(run=cmd_status)
    batch = commands.add_parser("batch", help="submit many documents of one source")
    batch.add_argument("source")
    group = batch.add_mutually_exclusive_group()
    group.add_argument("--file", help="one id per line, or JSON lines; '-' reads stdin")
    group.add_argument("document_ids", nargs="*", default=[], metavar="DOCUMENT_ID")
    batch.set_defaults(run=cmd_batch)
    return parser


def _wait_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--wait", action="store_true", help="until completed or failed")
    command.add_argument(
        "--interval", type=float, default=0.5, help="seconds before asking again after an error"
    )
    command.add_argument("--timeout", type=float, default=300.0, help="seconds to wait at most")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code says how it went (see the module docstring)."""
    args = build_parser().parse_args(argv)
    client = Client(args.api, args.token)
    try:
        code: int = args.run(client, args)
    except ApiError as exc:
        print(exc.describe(), file=sys.stderr)
        return exc.exit_code
    except (OSError, ValueError) as exc:  # unreadable batch file, bad JSON line
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return code


if __name__ == "__main__":
    sys.exit(main())

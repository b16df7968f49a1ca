"""Where the live routing percentage comes from: a static value, or a watched ConfigMap.

The operator raises the rollout percentage step by step by writing a ConfigMap; every
API replica must follow within a second, and must never route more than the operator
asked for. So ConfigMapRoutingSource lists the one ConfigMap (a `metadata.name` field
selector), then watches it from the list's resourceVersion, and applies each change.
A malformed value is logged, counted and ignored (the last good config stays; a typo
never becomes "100%"), and so is a deleted ConfigMap.

The watch follows the API server's protocol: each event and each BOOKMARK carries the
resourceVersion to resume from when the server ends the watch (timeoutSeconds); an
ERROR event with code 410 (Gone: the version left the server's watch window) means
re-list now, which is routine, not a failure. The field selector is also what lets the
chart's RBAC grant list/watch on this ConfigMap alone (resourceNames: the API server
allows a list or watch under resourceNames only with a metadata.name field selector).

Design: the blocking `kubernetes` client in one daemon thread, not asyncio + aiohttp.
The client already understands every kubeconfig (TLS, tokens, exec plugins, in-cluster
service accounts with token refresh), which a hand-written aiohttp watcher would have
to re-implement. The request path never waits on that thread: the thread publishes
each new RoutingConfig by rebinding `current` (an atomic reference swap), so a request
reads one attribute, without locks or awaits. stop() interrupts the watch by shutting
down the stream's socket; short watch and read timeouts bound it anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import threading
from collections.abc import Callable
from typing import Any, Protocol

import kubernetes.client
import kubernetes.config
from kubernetes.watch.watch import iter_resp_lines
from prometheus_client import Counter, Gauge

from ingestion_api.routing import RoutingConfig, RoutingConfigError, parse_routing_data

log = logging.getLogger(__name__)

ROLLOUT_PERCENTAGE = Gauge(
    "ingestion_rollout_percentage",
    "Share of documents (0-100) that this API process routes to the Temporal workflow.",
)
ROUTING_CONFIG_ERRORS = Counter(
    "ingestion_routing_config_errors_total",
    "Routing ConfigMap values rejected (the last good config was kept), by reason.",
    ["reason"],
)
ROUTING_CONFIG_UPDATES = Counter(
    "ingestion_routing_config_updates_total",
    "Routing config changes applied by this API process.",
)

# Defaults, in seconds. The watch ends server-side after WATCH_TIMEOUT_S and client-side
# after one more second without a byte, so a dead connection is noticed and stop() is
# bounded even if interrupting the socket fails; re-watching is one cheap request.
WATCH_TIMEOUT_S = 2
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_MARGIN_S = 1.0  # read timeout = the watch timeout plus this
INITIAL_SYNC_TIMEOUT_S = 5.0
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 5.0
STOP_JOIN_TIMEOUT_S = 2.0


class RoutingSource(Protocol):
    """What the API asks on every request (`current`) and at startup/shutdown/readiness."""

    current: RoutingConfig  # a plain attribute: read per request, no lock, no await

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def describe(self) -> str: ...


class StaticRoutingSource:
    """A fixed config (local runs, or no cluster): always ready, never changes."""

    def __init__(self, config: RoutingConfig) -> None:
        self.current = config
        self.ready = True

    async def start(self) -> None:
        ROLLOUT_PERCENTAGE.set(self.current.percentage)

    async def stop(self) -> None:
        return None

    def describe(self) -> str:
        return f"static routing config (percentage={self.current.percentage})"


class WatchBroken(Exception):
    """The watch stream reported an error: back off, then re-list before watching again."""


class WatchExpired(Exception):
    """410 Gone: the watch's resourceVersion is too old for the server; re-list at once."""


def read_watch_event(event: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
    """(type, object, resourceVersion to resume from) of one watch event, as the API server
    sends them; an ERROR event (its object is a Status) raises WatchExpired for 410 Gone,
    WatchBroken otherwise. A BOOKMARK's object is only a resourceVersion."""
    kind, obj = str(event.get("type")), event.get("object") or {}
    if kind == "ERROR":
        message = f"watch error {obj.get('code')} {obj.get('reason')}: {obj.get('message')}"
        raise WatchExpired(message) if obj.get("code") == 410 else WatchBroken(message)
    version = _meta(obj).get("resourceVersion")
    return kind, obj, str(version) if version else None


class ConfigMapRoutingSource:
    """The routing config from `data[key]` of ConfigMap `namespace/name`, kept live by a watch.

    `current` is `fallback` until the ConfigMap is first seen. `ready` turns True after
    the first successful list (even when the ConfigMap does not exist yet) and stays True
    through later API outages, which keep the last config while retrying. `on_change`
    is called from the watch thread with each newly applied config: keep it quick and
    thread-safe (use loop.call_soon_threadsafe to reach an event loop).
    """

    def __init__(
        self,
        namespace: str,
        name: str,
        key: str,
        kubeconfig: str | None,
        fallback: RoutingConfig,
        on_change: Callable[[RoutingConfig], None] | None = None,
        *,
        watch_timeout_seconds: int = WATCH_TIMEOUT_S,
        initial_sync_timeout: float = INITIAL_SYNC_TIMEOUT_S,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.key = key
        self.kubeconfig = kubeconfig
        self.fallback = fallback
        self.on_change = on_change
        self.current = fallback
        self.ready = False
        self._watch_timeout = watch_timeout_seconds
        self._request_timeout = (CONNECT_TIMEOUT_S, watch_timeout_seconds + READ_TIMEOUT_MARGIN_S)
        self._initial_sync_timeout = initial_sync_timeout
        self._api: kubernetes.client.CoreV1Api | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._first_attempt = threading.Event()  # set after the first list, good or failed
        self._response: Any = None  # the open watch stream, so stop() can cut it
        self._seen_version: str | None = None  # resourceVersion of the last object handled
        self._present = False  # whether the ConfigMap existed when last seen

    def describe(self) -> str:
        state = "ready" if self.ready else "not ready"
        return (
            f"ConfigMap {self.namespace}/{self.name} key {self.key!r} ({state}, "
            f"percentage={self.current.percentage})"
        )

    async def start(self) -> None:
        """Start watching; return after the first list attempt (bounded), reachable or not."""
        if self._thread is not None:
            return
        # In a thread: the first use of CoreV1Api imports the client's models (~1 s), which
        # would stall the event loop. A bad kubeconfig is a deployment error: it raises.
        self._api = await asyncio.to_thread(self._make_client)
        ROLLOUT_PERCENTAGE.set(self.current.percentage)
        self._stopping.clear()
        self._first_attempt.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"routing-watch-{self.name}", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._first_attempt.wait, self._initial_sync_timeout)

    async def stop(self) -> None:
        """Stop watching; returns within about a second (the stream's socket is cut)."""
        thread, self._thread = self._thread, None
        self._stopping.set()
        self._interrupt_stream()
        if thread is not None:
            await asyncio.to_thread(thread.join, STOP_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("routing watch thread for %s did not stop in time", self.name)
        if self._api is not None:
            self._api.api_client.close()
            self._api = None
        self.ready = False

    def _make_client(self) -> kubernetes.client.CoreV1Api:
        # A private Configuration per source: load_kube_config() without one would change
        # the process-wide default, which other clients in the process may rely on.
        configuration = kubernetes.client.Configuration()
        if self.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        else:
            kubernetes.config.load_kube_config(
                config_file=self.kubeconfig, client_configuration=configuration
            )
        # No urllib3-level retries: _run retries with backoff and must notice stop() between
        # attempts (4 attempts at the connect timeout each would outlast stop()'s join).
        configuration.retries = 0
        return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(configuration))

    def _interrupt_stream(self) -> None:
        response = self._response
        if response is not None:
            # Unblocks the thread's socket read now, instead of at the read timeout.
            with contextlib.suppress(Exception):
                response.shutdown()

    # --- the watch thread ---------------------------------------------------------------

    def _run(self) -> None:
        """List, then watch until the watch breaks; on any failure back off and re-list."""
        delay = BACKOFF_INITIAL_S
        failing = False
        while not self._stopping.is_set():
            try:
                version = self._list()
                self._first_attempt.set()
                if failing:
                    log.info("routing ConfigMap %s is reachable again", self._where())
                failing, delay = False, BACKOFF_INITIAL_S
                self._watch(version)
            except WatchExpired as exc:
                log.debug("routing ConfigMap %s: %s; re-listing", self._where(), exc)
                continue  # the server's routine answer to an old version: no backoff
            except Exception as exc:
                self._first_attempt.set()  # start() stops waiting: the API can come up unready
                if self._stopping.is_set():
                    break
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "routing ConfigMap %s: %s; retrying", self._where(), _brief(exc))
                failing = True
            # Jitter keeps many replicas from re-listing in lockstep after an outage.
            self._stopping.wait(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _list(self) -> str:
        """Apply the ConfigMap as listed now; return the list's resourceVersion."""
        assert self._api is not None
        # Raw JSON (_preload_content=False): the watch handles the same dicts.
        response: Any = self._api.list_namespaced_config_map(
            self.namespace,
            field_selector=self._selector,
            _preload_content=False,
            _request_timeout=self._request_timeout,
        )
        body = json.loads(response.data)
        found = body.get("items") or []
        if found:
            self._on_object(found[0])
        elif self._present:
            self._on_deleted()
        self.ready = True
        return str(_meta(body).get("resourceVersion") or "")

    @property
    def _selector(self) -> str:
        return f"metadata.name={self.name}"

    def _watch(self, version: str) -> None:
        """Watch from `version`, renewing each ended watch; returns only when stopping."""
        while not self._stopping.is_set():
            try:
                version = self._watch_once(version)
            except (WatchBroken, WatchExpired):
                raise
            except Exception as exc:
                if self._stopping.is_set():
                    return
                if not _is_read_timeout(exc):
                    raise
                # An idle stream hit the read timeout: renew it from where it was.

    def _watch_once(self, version: str) -> str:
        """Stream one watch request's events; return the last resourceVersion seen."""
        assert self._api is not None
        response: Any = self._api.list_namespaced_config_map(
            self.namespace,
            field_selector=self._selector,
            watch=True,
            resource_version=version or None,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
            _request_timeout=self._request_timeout,
        )
        self._response = response
        try:
            if self._stopping.is_set():  # stop() ran before the stream could be interrupted
                return version
            for line in iter_resp_lines(response):
                if line:
                    version = self._on_event(json.loads(line)) or version
        finally:
            self._response = None
            response.close()  # never hand a half-read stream back to the pool
            response.release_conn()
        return version

    def _on_event(self, event: dict[str, Any]) -> str | None:
        """Handle one watch event; return the resourceVersion to resume from."""
        kind, obj, version = read_watch_event(event)
        if kind == "DELETED":
            self._on_deleted()
        elif kind in ("ADDED", "MODIFIED"):
            self._on_object(obj)
        return version

    def _on_object(self, obj: dict[str, Any]) -> None:
        """Apply the ConfigMap's data unless it is the version already handled."""
        self._present = True
        version = _meta(obj).get("resourceVersion")
        if version is not None and version == self._seen_version:
            return  # a re-list after 410 Gone returns it unchanged: count a bad value once
        self._seen_version = version
        data = obj.get("data") or {}
        try:
            config = parse_routing_data(data, self.key)
        except RoutingConfigError as exc:
            ROUTING_CONFIG_ERRORS.labels(reason=exc.reason).inc()
            log.error(
                "routing ConfigMap %s rejected (reason=%s, %s=%r): %s; keeping %s",
                self._where(), exc.reason, self.key, data.get(self.key), exc, self.current,
            )  # fmt: skip
            return
        self._apply(config)

    def _on_deleted(self) -> None:
        self._present = False
        self._seen_version = None  # a re-created ConfigMap is applied whatever its version
        log.warning(
            "routing ConfigMap %s was deleted; keeping the last config %s",
            self._where(), self.current,
        )  # fmt: skip

    def _apply(self, config: RoutingConfig) -> None:
        if config == self.current:
            return
        previous, self.current = self.current, config  # the one write requests observe
        ROLLOUT_PERCENTAGE.set(config.percentage)
        ROUTING_CONFIG_UPDATES.inc()
        log.info("routing config %s applied (was %s)", config, previous)
        if self.on_change is not None:
            try:
                self.on_change(config)
            except Exception:
                log.exception("routing on_change callback failed")

    def _where(self) -> str:
        return f"{self.namespace}/{self.name}"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _is_read_timeout(exc: BaseException) -> bool:
    """True for the urllib3 read timeout of an idle stream (wrapped or not)."""
    import urllib3.exceptions

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"

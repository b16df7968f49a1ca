"""kmock's KubernetesEmulator with the server-side behaviour real clients rely on.

kmock is a stateful in-memory Kubernetes API over HTTP. Measured here (see
/work/shared/REAL-PARTS.md), kopf, the kubernetes client and kubectl need a little more:

* metadata.resourceVersion / uid / creationTimestamp (and generation for objects
  with a spec) stamped on create and update; a JSON patch whose `test` op fails
  (kopf tests resourceVersion) is answered 422, like the real API server;
* metadata.generateName honoured (kopf posts Events that way); create answers 201;
* the status subresource separated from the main resource, as in Kubernetes;
* apiVersion/kind on objects and lists; discovery of the core group says "v1";
* Namespaces themselves can be listed and fetched (kmock 0.8 cannot parse those URLs);
* `fieldSelector=metadata.name=X` (or metadata.namespace) on lists and watches: the API's
  routing watch selects its ConfigMap that way; any other field selector is a 400, never
  silently ignored.

The emulator remains for what the real control plane (control_plane.py) cannot be on a
machine without its binaries: `make demo`'s fallback and the operator benchmark's
100-rollout API server (kube_serve.py).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp.web
import attrs
import jsonpatch
import kmock
from kmock._internal import parsing  # see _parse_path_with_namespaces

DEFAULT_VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 merge patch (null deletes); `$`-directives of strategic merges are dropped."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    """kmock 0.8's parse_path, fixed for the Namespace resource itself.

    kmock reads `/api/v1/namespaces[/NAME]` as a namespace prefix without a resource,
    so listing Namespaces fails with a 500 and fetching one finds nothing; kopf lists and
    watches Namespaces when it serves specific namespaces (`kopf run -n NS`).
    """
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"] and len(parts) >= 3 and parts[2] == "namespaces":
        rest = parts[3:]
        if len(rest) <= 1 or (len(rest) == 2 and rest[1] in _NAMESPACE_SUBRESOURCES):
            name = rest[0] if rest else None
            sub = rest[1] if len(rest) == 2 else None
            return parsing.ParsedPath("", "v1", "namespaces", None, name, sub)
    return _original_parse_path(path)


_NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_original_parse_path = parsing.parse_path


def _install_namespace_fix() -> None:
    # kmock's request parser looks the function up on its module at call time.
    parsing.parse_path = _parse_path_with_namespaces


def _object_key(request: kmock.Request) -> tuple[kmock.resource, str | None, str]:
    assert request.resource is not None and request.name is not None  # named requests only
    return (request.resource, request.namespace, request.name)


def meta_name(obj: dict[str, Any]) -> str | None:
    name: str | None = obj.get("metadata", {}).get("name")
    return name


SELECTABLE_FIELDS = ("metadata.name", "metadata.namespace")


def _field_selector(request: kmock.Request) -> dict[str, str]:
    """`fieldSelector=metadata.name=a,metadata.namespace=b` as {field: value}; 400 otherwise."""
    selector = (request.params or {}).get("fieldSelector") or ""
    wanted: dict[str, str] = {}
    for term in filter(None, selector.split(",")):
        field, equals, value = term.partition("=")
        field = field.rstrip("=")  # `a==b` means `a=b`
        if not equals or field not in SELECTABLE_FIELDS or value.startswith("="):
            raise kmock.KubernetesError(
                status=400,
                reason="BadRequest",
                message=f"field selector {term!r}: the emulator selects only "
                f"{' or '.join(SELECTABLE_FIELDS)} by equality",
            )
        wanted[field] = value.lstrip("=")
    return wanted


def _selected(obj: dict[str, Any], wanted: dict[str, str]) -> bool:
    meta = obj.get("metadata") or {}
    return all(meta.get(field.split(".")[1]) == value for field, value in wanted.items())


def _invalid(message: str) -> kmock.KubernetesError:
    details = {"causes": [{"message": message}]}
    return kmock.KubernetesError(status=422, reason="Invalid", message=message, details=details)


REQUESTS_KEPT = 16  # matching a new request scans up to twice this many per reaction


@attrs.define(kw_only=True)
class RealisticEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the server-side behaviour clients depend on (see module doc)."""

    _revision: int = attrs.field(default=0, init=False)
    _mutations: asyncio.Lock | None = attrs.field(default=None, init=False)  # made in the loop

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        _install_namespace_fix()

    def _forget_old_requests(self) -> None:
        """Keep only the latest requests. kmock records every request for assertions, and
        matching a request to a reaction scans that record from the start, so a server
        that runs for hours (the sandbox, a benchmark with 100 rollouts) slows down
        quadratically. Nothing here asserts on old requests."""
        if len(self._requests) > 2 * REQUESTS_KEPT:
            del self._requests[:-REQUESTS_KEPT]
            for payload in self._payloads:
                del payload._requests[:-REQUESTS_KEPT]

    def next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._forget_old_requests()
        action = request.action
        if request.resource is None or action not in (
            kmock.action.CREATE,
            kmock.action.UPDATE,
            kmock.action.DELETE,
        ):
            return await super()._handle(request)
        # One mutation at a time: the resourceVersion check and the write must be atomic.
        async with self.mutation_lock():
            if action == kmock.action.UPDATE and request.name is not None:
                return await self._handle_update(request)
            if action == kmock.action.CREATE and isinstance(request.data, dict):
                # kmock matches requests by identity, so stamp this very request (it is frozen).
                stamped = self.stamp_new(request.data, request.namespace, request.resource)
                object.__setattr__(request, "data", stamped)
            elif action == kmock.action.DELETE and request.name is not None:
                self._stamp_deletion(request)
            response = await super()._handle(request)
        if action == kmock.action.CREATE and response.status == 200 and not response.prepared:
            response.set_status(201)
        return response

    def mutation_lock(self) -> asyncio.Lock:
        if self._mutations is None:
            self._mutations = asyncio.Lock()
        return self._mutations

    async def _handle_update(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        """Apply the patch ourselves (kmock's merge cannot fail a JSON-patch test with 422)."""
        key = _object_key(request)
        if key not in self.objects or self.objects[key].deleted:
            return await super()._handle(request)  # kmock answers 404
        old = copy.deepcopy(self.objects[key].raw)
        new = self._patched(request, copy.deepcopy(old))
        if new != old:  # a no-op patch changes nothing and notifies no one, as in Kubernetes
            async with self._lock:
                self.objects[key].history.append(new)
                event = {"type": "MODIFIED", "object": copy.deepcopy(new)}
                await self._buses[key[0]].put(event)
        # Serve the response (user reactions first, then kmock's fallback: the stored object),
        # skipping KubernetesEmulator._handle, which would apply the patch a second time.
        response = await kmock.KubernetesScaffold._handle(self, request)
        meta = new.get("metadata", {})
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            async with self._lock:  # the last finalizer is gone: the object goes away
                self.objects[key].delete()
                await self._buses[key[0]].put({"type": "DELETED", "object": new})
        return response

    def stamp_new(
        self, data: dict[str, Any], url_namespace: str | None, resource: kmock.resource
    ) -> dict[str, Any]:
        """What the API server adds to a new object: identity, version, type, timestamps."""
        obj = self._typed(copy.deepcopy(data), resource)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _invalid("metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if url_namespace:
            meta["namespace"] = url_namespace
        elif self._info(resource).namespaced is False:
            meta.pop("namespace", None)  # cluster-scoped
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = self.next_revision()
        now = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
        meta["creationTimestamp"] = now.isoformat().replace("+00:00", "Z")
        if "spec" in obj:
            meta["generation"] = 1
        return obj

    def _patched(self, request: kmock.Request, old: dict[str, Any]) -> dict[str, Any]:
        if isinstance(request.data, list):
            try:
                patched = jsonpatch.apply_patch(old, request.data, in_place=False)
            except jsonpatch.JsonPatchTestFailed as exc:
                raise _invalid(f"the server rejected our request due to an error: {exc}") from exc
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise _invalid(f"invalid JSON patch: {exc}") from exc
        elif isinstance(request.data, dict):
            expected = (request.data.get("metadata") or {}).get("resourceVersion")
            current = old.get("metadata", {}).get("resourceVersion")
            if expected is not None and expected != current:
                raise kmock.KubernetesError(
                    status=409,
                    reason="Conflict",
                    details={"kind": old.get("kind"), "name": meta_name(old)},
                    message="the object has been modified; please apply your changes "
                    "to the latest version and try again",
                )
            patched = _merge(old, request.data)
        else:
            raise _invalid("the patch body must be a JSON object or a JSON-patch list")
        new = self._respect_status_subresource(request, old, patched)
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "name", "namespace"):
            if field in old.get("metadata", {}):
                meta[field] = old["metadata"][field]
        if new != old:
            meta["resourceVersion"] = self.next_revision()
            if "generation" in old.get("metadata", {}) and new.get("spec") != old.get("spec"):
                meta["generation"] = old["metadata"]["generation"] + 1
        return new

    def _respect_status_subresource(
        self, request: kmock.Request, old: dict[str, Any], patched: dict[str, Any]
    ) -> dict[str, Any]:
        assert request.resource is not None
        has_status = "status" in self._info(request.resource).subresources
        if request.subresource == "status":
            new = copy.deepcopy(old)  # only .status (and metadata) change via /status
            new["metadata"] = patched.get("metadata", {})
            if "status" in patched:
                new["status"] = patched["status"]
            else:
                new.pop("status", None)
            return new
        if has_status and request.subresource is None:
            new = dict(patched)  # .status does not change via the main resource
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
            return new
        return dict(patched)

    def _typed(self, obj: dict[str, Any], resource: kmock.resource | None) -> dict[str, Any]:
        """Objects always carry apiVersion and kind on the real API (kubectl -o yaml needs them)."""
        if resource is not None:
            obj.setdefault("apiVersion", f"{resource.group}/{resource.version}".lstrip("/"))
            obj.setdefault(
                "kind", self._info(resource).kind or (resource.plural or "").capitalize()
            )
        return obj

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        stored = cast(dict[str, Any], await super()._serve_fetch(request))
        return self._typed(dict(stored), request.resource)

    def _info(self, resource: kmock.resource) -> kmock.ResourceInfo:
        try:
            return self.resources[resource]
        except KeyError:
            return kmock.ResourceInfo()

    def _stamp_deletion(self, request: kmock.Request) -> None:
        key = _object_key(request)
        if key in self.objects and not self.objects[key].deleted:
            meta = self.objects[key].get("metadata", {})
            if meta.get("finalizers") and not meta.get("deletionTimestamp"):
                self.objects[key].patch({"metadata": {"resourceVersion": self.next_revision()}})

    async def _serve_list(self, request: kmock.Request) -> Any:
        wanted = _field_selector(request)
        answer = dict(cast(dict[str, Any], await super()._serve_list(request)))
        answer["items"] = [item for item in answer["items"] if _selected(item, wanted)]
        resource = request.resource
        if resource is not None:
            kind = self._info(resource).kind or (resource.plural or "").capitalize()
            answer["apiVersion"] = f"{resource.group}/{resource.version}".lstrip("/")
            answer["kind"] = f"{kind}List"
            answer["items"] = [self._typed(dict(item), resource) for item in answer["items"]]
        answer["metadata"] = {"resourceVersion": str(self._revision)}
        return answer

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        wanted = _field_selector(request)
        async for event in super()._serve_watch(request):
            if not isinstance(event, dict) or _selected(event.get("object") or {}, wanted):
                yield event

    async def _serve_version(self, request: kmock.Request) -> Any:
        answer = dict(cast(dict[str, Any], await super()._serve_version(request)))
        if request.resource is not None and request.resource.group == "":
            answer["groupVersion"] = request.resource.version  # "v1", not "/v1"
        return answer

"""A Kubernetes API emulator served over real HTTP, for kopf, kubectl and the kubernetes client.

The tests and `make demo` run on a real kube-apiserver (control_plane.py) wherever
hack/control-plane/build.sh has built it. This emulator stays for what that cannot cover:
`make demo` on a machine without the binaries (a clean clone without Go), the operator
benchmark's 100-rollout API server (kube_serve.py), which measures the operator and not
an apiserver, and the routing benchmark. It has no admission, no RBAC, no controllers and
loose watch semantics, so nothing that depends on those is tested against it.

It serves kube_api.RealisticEmulator (kmock plus what real clients need) with kmock.Server
in a background thread with its own event loop, so synchronous fixtures and the sandbox
can start it, seed and read objects, declare custom resources, and hand other processes a
kubeconfig.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp.test_utils
import aiohttp.web
import yaml
from ingestion_contract import crd

from ingestion_sandbox.servers.common import LOCALHOST, LoopThread, Service, ServiceUnavailable

if TYPE_CHECKING:  # kmock is in the optional sandbox extra: imported when first used
    import kmock

    from ingestion_sandbox.servers.kube_api import RealisticEmulator

KMOCK_HINT = "pip install 'kmock>=0.8,<1' (or: pip install -e '.[sandbox]')"

T = TypeVar("T")


class _QuickStopServer(aiohttp.test_utils.RawTestServer):
    """aiohttp's test server, but open watch streams are cut after 1 s on stop.

    By default aiohttp waits up to 60 s for in-flight requests, and a watch (kopf,
    `kubectl get -w`) never finishes on its own, so stop() would hang.
    """

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> aiohttp.web.ServerRunner:
        server = aiohttp.web.Server(self._handler, loop=self._loop, debug=debug, **kwargs)
        return aiohttp.web.ServerRunner(server, debug=debug, shutdown_timeout=1.0, **kwargs)


class KubeEmulator(Service):
    """The emulator served over HTTP on 127.0.0.1:P (`kmock.Server`, background thread).

    Attributes: url ("http://127.0.0.1:P"), port, emulator (the kmock handler).
    """

    name = "kube-emulator"

    def __init__(
        self,
        port: int | None = None,
        load_bundled: bool = True,
        namespaces: Iterable[str] = ("default", "kube-system", "kube-public"),
    ) -> None:
        self.requested_port = port
        self.namespaces = tuple(namespaces)
        self.port = port or 0
        try:
            from ingestion_sandbox.servers.kube_api import RealisticEmulator
        except ImportError as exc:
            raise ServiceUnavailable("kmock", KMOCK_HINT) from exc
        self.emulator: RealisticEmulator = RealisticEmulator()
        if load_bundled:
            self.emulator.resources.load_bundled()
        self._loop: LoopThread | None = None
        self._server: kmock.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _start(self) -> None:
        self._loop = LoopThread(f"{self.name}-server")
        self._loop.start()
        self._server = self._loop.run(self._serve())
        self.port = self._server.port
        import kmock

        if self.namespaces and kmock.resource("v1", "namespaces") in self.emulator.resources:
            for namespace in self.namespaces:  # a real cluster has them; kopf -n NS needs them
                if self.get("v1/namespaces", None, namespace) is None:
                    self.seed(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                    )

    async def _serve(self) -> kmock.Server:
        import kmock

        await self.emulator.__aenter__()
        server = kmock.Server(
            self.emulator, host=LOCALHOST, port=self.requested_port, server_cls=_QuickStopServer
        )
        try:
            await server.__aenter__()
        except BaseException:
            await self.emulator.__aexit__(None, None, None)
            raise
        return server

    async def _shutdown(self, server: kmock.Server) -> None:
        try:
            await server.__aexit__(None, None, None)
        except RuntimeError:
            # kmock's DNS interceptor refuses to unwind when another kmock server in this
            # process was entered after this one and is still active: close ours anyway.
            await server.client.close()
            await server.server.close()
        finally:
            await self.emulator.__aexit__(None, None, None)

    def _stop(self) -> None:
        if self._loop is not None:
            if self._server is not None and self._loop.alive:
                self._loop.run(self._shutdown(self._server))
            self._loop.stop()
        self._server = None
        self._loop = None

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn()` in the server's loop under the mutation lock (directly if not running)."""
        if self._loop is None or not self._loop.alive:
            return fn()

        async def locked() -> T:
            async with self.emulator.mutation_lock():
                return fn()

        return self._loop.run(locked())

    def register_custom_resource(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        singular: str | None = None,
        short_names: Iterable[str] = (),
        namespaced: bool = True,
        subresources: Iterable[str] = frozenset({"status"}),
        categories: Iterable[str] = (),
    ) -> None:
        """Declare a custom resource, as an applied CRD would (discovery and storage)."""
        import kmock

        from ingestion_sandbox.servers.kube_api import DEFAULT_VERBS

        info = kmock.ResourceInfo(
            kind=kind,
            singular=singular or kind.lower(),
            namespaced=namespaced,
            verbs=set(DEFAULT_VERBS),
            shortnames=set(short_names),
            categories=set(categories),
            subresources=set(subresources),
        )

        def register() -> None:
            self.emulator.resources[f"{group}/{version}/{plural}"] = info

        self._call(register)

    def register_rollout_crd(self) -> None:
        """What `kubectl apply -f crds/ingestionrollouts.yaml` declares on a real API server."""
        self.register_custom_resource(
            crd.GROUP,
            crd.VERSION,
            crd.KIND,
            crd.PLURAL,
            singular=crd.SINGULAR,
            short_names=[crd.SHORT_NAME],
            subresources={"status"},
        )

    def _resource_for(self, api_version: str, kind: str) -> kmock.resource:
        group, _, version = api_version.rpartition("/")
        for resource in self.emulator.resources:
            same_version = (resource.group, resource.version) == (group, version)
            if same_version and self.emulator.resources[resource].kind == kind:
                return resource
        raise KeyError(f"no resource of kind {kind!r} in {api_version!r} is declared")

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` as if it had been created via the API (watchers see ADDED); return it."""
        resource = self._resource_for(obj["apiVersion"], obj["kind"])
        namespaced = bool(self.emulator.resources[resource].namespaced)

        if self._loop is None or not self._loop.alive:
            raise RuntimeError("seed() needs a running emulator: start() it first")

        async def store() -> dict[str, Any]:
            namespace = obj.get("metadata", {}).get("namespace") or "default"
            stamped = self.emulator.stamp_new(obj, namespace if namespaced else None, resource)
            key = (resource, stamped["metadata"].get("namespace"), stamped["metadata"]["name"])
            if key in self.emulator.objects and not self.emulator.objects[key].deleted:
                raise ValueError(f"{key} already exists")
            if key in self.emulator.objects:
                self.emulator.objects[key].create(stamped)
            else:
                self.emulator.objects[key] = stamped
            event = {"type": "ADDED", "object": copy.deepcopy(stamped)}
            await self.emulator._buses[resource].put(event)
            return copy.deepcopy(stamped)

        async def locked() -> dict[str, Any]:
            async with self.emulator.mutation_lock():
                return await store()

        return self._loop.run(locked())

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The stored object (a copy) or None; resource like "v1/configmaps" or "g/v/plural"."""
        import kmock

        key = (kmock.resource(resource), namespace, name)

        def fetch() -> dict[str, Any] | None:
            if key not in self.emulator.objects or self.emulator.objects[key].deleted:
                return None
            return copy.deepcopy(self.emulator.objects[key].raw)

        return self._call(fetch)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """A kubeconfig for kubectl, kubernetes.config.load_kube_config and kopf (http, no auth)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "kmock", "user": {}}],
            "contexts": [
                {
                    "name": "kmock",
                    "context": {"cluster": "kmock", "user": "kmock", "namespace": namespace},
                }
            ],
            "current-context": "kmock",
            "preferences": {},
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

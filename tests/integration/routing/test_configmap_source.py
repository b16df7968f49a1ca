"""ConfigMapRoutingSource against a real kube-apiserver, with the chart's RBAC for the API.

Each test gets a namespace of its own on the session's control plane, holding the chart's
routing ConfigMap name (ingestion-routing) and the chart's API ServiceAccount, Role and
RoleBinding exactly as `helm template` renders them (templates/api-rbac.yaml). Every
source (an "API replica") runs with a TokenRequest token of that ServiceAccount, so these
tests also show that the routing watch needs nothing the chart does not grant: list and
watch of this one ConfigMap, by name. The operator's side writes as admin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import ConfigMapRoutingSource, read_watch_event
from ingestion_sandbox.servers.common import LOCALHOST, free_port
from ingestion_sandbox.servers.control_plane import ControlPlane
from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "apex-ingestion-rollout"
NAME = "ingestion-routing"  # the chart's routing.configMapName
KEY = "percentage"
API_ACCOUNT = "ingestion-api"  # release "ingestion"
PROPAGATION_WAIT_S = 5.0  # polled, never asserted as a speed (README and bench: < 1 s)

type MakeSource = Callable[..., Awaitable[ConfigMapRoutingSource]]


@pytest.fixture
def api_kubeconfig(control_plane: ControlPlane, kube_namespace: str) -> Path:
    """The chart's API RBAC (as rendered) in this namespace, and its ServiceAccount's token."""
    rendered = control_plane.helm(
        "template", "ingestion", str(CHART), "--namespace", kube_namespace,
        "--show-only", "templates/api-rbac.yaml",
    ).stdout  # fmt: skip
    control_plane.kubectl("apply", "-f", "-", input=rendered)
    return control_plane.kubeconfig_for_service_account(kube_namespace, API_ACCOUNT)


@pytest.fixture
def core(control_plane: ControlPlane) -> kubernetes.client.CoreV1Api:
    """The operator's side: an admin client that writes the ConfigMap."""
    client = kubernetes.config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    return kubernetes.client.CoreV1Api(client)


@pytest.fixture
async def make_source(api_kubeconfig: Path, kube_namespace: str) -> AsyncIterator[MakeSource]:
    """Start sources (API replicas) with the API's token; stop them all afterwards."""
    started: list[ConfigMapRoutingSource] = []

    async def make(**overrides: Any) -> ConfigMapRoutingSource:
        kwargs: dict[str, Any] = {
            "namespace": kube_namespace,
            "name": NAME,
            "key": KEY,
            "kubeconfig": str(api_kubeconfig),
            "fallback": RoutingConfig(percentage=0),
        } | overrides
        source = ConfigMapRoutingSource(**kwargs)
        started.append(source)
        await source.start()
        return source

    yield make
    for source in started:
        await source.stop()
    # stop() really ends the watch threads (it does not just stop waiting for them)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("routing-watch-")]
    assert leftover == []


def create_configmap(core: kubernetes.client.CoreV1Api, ns: str, data: dict[str, str]) -> None:
    body = kubernetes.client.V1ConfigMap(metadata={"name": NAME}, data=data)
    core.create_namespaced_config_map(ns, body)


def patch_percentage(core: kubernetes.client.CoreV1Api, ns: str, value: str) -> None:
    core.patch_namespaced_config_map(NAME, ns, {"data": {KEY: value}})


async def wait_for(condition: Callable[[], bool], within: float = PROPAGATION_WAIT_S) -> bool:
    """Whether `condition()` held within `within` seconds (polled every 10 ms)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def error_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("ingestion_routing_config_errors_total", {"reason": reason})
    return value or 0.0


def counted_more_than(reason: str, before: float) -> bool:
    return error_count(reason) > before


def all_at(replicas: list[ConfigMapRoutingSource], percentage: int) -> bool:
    return all(r.current.percentage == percentage for r in replicas)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


async def test_two_replicas_follow_each_patch(
    core: kubernetes.client.CoreV1Api, kube_namespace: str, make_source: MakeSource
) -> None:
    """Given two replicas watching the ConfigMap at 10% with the API's token, when the
    operator patches the percentage three times, then both replicas follow each patch."""
    create_configmap(core, kube_namespace, {KEY: "10"})
    replicas = [await make_source(), await make_source()]
    assert all(r.ready and r.current.percentage == 10 for r in replicas)
    for value in (25, 50, 100):
        patch_percentage(core, kube_namespace, str(value))
        assert await wait_for(partial(all_at, replicas, value)), [r.current for r in replicas]


async def test_malformed_values_keep_the_last_good_percentage(
    core: kubernetes.client.CoreV1Api,
    kube_namespace: str,
    make_source: MakeSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a replica at 20%, when the ConfigMap gets "abc" then "150", then each error is
    counted once and logged with the value and the reason, the replica stays at 20%, and a
    good value afterwards is applied again."""
    create_configmap(core, kube_namespace, {KEY: "20"})
    source = await make_source()
    assert source.current.percentage == 20
    for bad, reason in (("abc", "not_an_integer"), ("150", "out_of_range")):
        before = error_count(reason)
        patch_percentage(core, kube_namespace, bad)
        assert await wait_for(partial(counted_more_than, reason, before))
        await asyncio.sleep(0.2)
        assert error_count(reason) == before + 1
        assert source.current.percentage == 20
        errors = messages(caplog, logging.ERROR)
        assert any(repr(bad) in m and reason in m for m in errors), errors
    patch_percentage(core, kube_namespace, "30")
    assert await wait_for(lambda: source.current.percentage == 30)


async def test_absent_configmap_means_fallback_until_created(
    core: kubernetes.client.CoreV1Api, kube_namespace: str, make_source: MakeSource
) -> None:
    """Given no ConfigMap yet and a replica with a 5% fallback, then it is ready and routes at
    5%; when the operator creates the ConfigMap, then its config is applied and on_change
    hears of it once."""
    changes: list[RoutingConfig] = []
    source = await make_source(fallback=RoutingConfig(percentage=5), on_change=changes.append)
    assert source.ready
    assert source.current == RoutingConfig(percentage=5)
    create_configmap(
        core, kube_namespace, {KEY: "40", "parallel": "true", "shadowSampleRate": "0.5"}
    )
    expected = RoutingConfig(percentage=40, parallel=True, shadow_sample_rate=0.5)
    assert await wait_for(lambda: source.current == expected)
    assert changes == [expected]


async def test_deleted_configmap_keeps_the_last_config_and_says_so(
    core: kubernetes.client.CoreV1Api,
    kube_namespace: str,
    make_source: MakeSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a replica at 35%, when the ConfigMap is deleted, then the server's DELETED event
    is logged as a warning and the replica stays at 35%; when it is re-created at 45%, then
    45% applies."""
    create_configmap(core, kube_namespace, {KEY: "35"})
    source = await make_source()
    assert source.current.percentage == 35
    core.delete_namespaced_config_map(NAME, kube_namespace)
    assert await wait_for(
        lambda: any("was deleted" in m for m in messages(caplog, logging.WARNING))
    )
    assert source.current.percentage == 35
    create_configmap(core, kube_namespace, {KEY: "45"})
    assert await wait_for(lambda: source.current.percentage == 45)


async def test_other_configmaps_never_reach_the_replica(
    core: kubernetes.client.CoreV1Api,
    kube_namespace: str,
    make_source: MakeSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a replica at 15%, when another ConfigMap in the namespace carries a malformed
    value under the same key, then nothing is counted or logged (the server sends only the
    selected ConfigMap), and a later patch of the routing ConfigMap still applies."""
    create_configmap(core, kube_namespace, {KEY: "15"})
    source = await make_source()
    before = error_count("not_an_integer")
    other = kubernetes.client.V1ConfigMap(metadata={"name": "unrelated"}, data={KEY: "junk"})
    core.create_namespaced_config_map(kube_namespace, other)
    core.patch_namespaced_config_map("unrelated", kube_namespace, {"data": {KEY: "more-junk"}})
    patch_percentage(core, kube_namespace, "16")
    assert await wait_for(lambda: source.current.percentage == 16)
    assert error_count("not_an_integer") == before
    assert not messages(caplog, logging.ERROR)


async def test_gauge_and_update_counter_show_the_applied_value(
    core: kubernetes.client.CoreV1Api, kube_namespace: str, make_source: MakeSource
) -> None:
    """Given a replica applying 33%, then the gauge shows 33 and one update was counted; when
    the percentage changes to 66, then the gauge follows and two updates were counted."""
    updates_before = REGISTRY.get_sample_value("ingestion_routing_config_updates_total") or 0.0
    create_configmap(core, kube_namespace, {KEY: "33"})
    source = await make_source()
    assert source.current.percentage == 33
    assert REGISTRY.get_sample_value("ingestion_rollout_percentage") == 33
    patch_percentage(core, kube_namespace, "66")
    assert await wait_for(lambda: source.current.percentage == 66)
    assert REGISTRY.get_sample_value("ingestion_rollout_percentage") == 66
    updates = REGISTRY.get_sample_value("ingestion_routing_config_updates_total")
    assert updates == updates_before + 2


async def test_kubectl_patch_is_picked_up(
    core: kubernetes.client.CoreV1Api,
    kube_namespace: str,
    make_source: MakeSource,
    control_plane: ControlPlane,
) -> None:
    """Given a replica at 10%, when someone runs `kubectl patch --type merge`, then the
    replica applies the new percentage."""
    create_configmap(core, kube_namespace, {KEY: "10"})
    source = await make_source()
    patched = await asyncio.to_thread(
        control_plane.kubectl,
        "-n", kube_namespace, "patch", "configmap", NAME, "--type", "merge",
        "-p", '{"data":{"percentage":"60"}}',
    )  # fmt: skip
    assert "patched" in patched.stdout
    assert await wait_for(lambda: source.current.percentage == 60)


async def test_unreachable_api_leaves_the_source_unready_on_fallback(
    tmp_path: Path, api_kubeconfig: Path, make_source: MakeSource
) -> None:
    """Given the API's kubeconfig pointed at a closed port, when a replica starts, then it is
    not ready, routes at its fallback and says so; and stop() returns."""
    closed = retarget(api_kubeconfig, free_port(), tmp_path / "closed.kubeconfig")
    source = await make_source(kubeconfig=str(closed), fallback=RoutingConfig(percentage=3))
    await asyncio.sleep(0.5)  # a few background retries
    assert not source.ready
    assert source.current == RoutingConfig(percentage=3)
    assert "not ready" in source.describe()
    await source.stop()


async def test_source_recovers_when_the_api_comes_up_later(
    core: kubernetes.client.CoreV1Api,
    control_plane: ControlPlane,
    kube_namespace: str,
    api_kubeconfig: Path,
    make_source: MakeSource,
    tmp_path: Path,
) -> None:
    """Given the ConfigMap at 70% and a replica whose API address answers nothing yet, when
    that address starts forwarding to the API server, then the replica's retries reach it:
    ready, and at 70% (its backoff is capped at 5 s)."""
    create_configmap(core, kube_namespace, {KEY: "70"})
    port = free_port()
    late = retarget(api_kubeconfig, port, tmp_path / "late.kubeconfig")
    source = await make_source(kubeconfig=str(late))
    assert not source.ready
    async with tcp_forwarder(port, control_plane.port):
        assert await wait_for(lambda: source.ready, 10.0)
        assert await wait_for(lambda: source.current.percentage == 70)
        await source.stop()


def retarget(kubeconfig: Path, port: int, target: Path) -> Path:
    """A copy of `kubeconfig` whose server is https://127.0.0.1:port (same CA, same token)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://{LOCALHOST}:{port}"
    target.write_text(yaml.safe_dump(config))
    return target


@contextlib.asynccontextmanager
async def tcp_forwarder(port: int, upstream: int) -> AsyncIterator[None]:
    """127.0.0.1:port relays raw TCP (TLS included) to 127.0.0.1:upstream while entered."""
    relays: set[asyncio.Task[Any]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        relays.add(task)
        up_reader, up_writer = await asyncio.open_connection(LOCALHOST, upstream)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        for each in (writer, up_writer):
            each.close()

    server = await asyncio.start_server(relay, LOCALHOST, port)
    try:
        yield
    finally:
        server.close()
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)


def test_the_servers_watch_events_read_as_the_source_expects(
    core: kubernetes.client.CoreV1Api, kube_namespace: str, api_kubeconfig: Path
) -> None:
    """Given the routing ConfigMap, when the API's token watches it as the source does (by
    name, bookmarks allowed, no resourceVersion), then the server sends the object (ADDED)
    and BOOKMARKs that read_watch_event turns into later resourceVersions to resume from,
    and nothing else: no other ConfigMap, no ERROR."""
    create_configmap(core, kube_namespace, {KEY: "12"})
    api = kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(api_kubeconfig))
    )
    response: Any = api.list_namespaced_config_map(
        kube_namespace,
        field_selector=f"metadata.name={NAME}",
        watch=True,
        allow_watch_bookmarks=True,
        timeout_seconds=2,
        _preload_content=False,
    )
    events = [read_watch_event(json.loads(line)) for line in response if line.strip()]
    kinds = [kind for kind, _, _ in events]
    # the server may add bookmarks of its own (periodically, and when it ends the watch)
    assert kinds[0] == "ADDED" and set(kinds[1:]) == {"BOOKMARK"}, kinds
    (_, added, _), *bookmarks = events
    assert added["metadata"]["name"] == NAME and added["data"] == {KEY: "12"}
    assert all("name" not in obj["metadata"] for _, obj, _ in bookmarks)  # versions only
    versions = [int(version or 0) for _, _, version in events]
    assert versions == sorted(versions) and versions[0] > 0

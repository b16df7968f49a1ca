"""ConfigMapRoutingSource against the Kubernetes API emulator, over real HTTP.

Each test owns a uniquely named ConfigMap in "default", so the watches of other
tests see its events but filter them out, as replicas sharing a namespace would.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from ingestion_api.routing import RoutingConfig
from ingestion_api.routing_source import ConfigMapRoutingSource
from ingestion_sandbox.servers.services import KubeEmulator, free_port
from prometheus_client import REGISTRY

NAMESPACE = "default"
KEY = "percentage"
PROPAGATION_LIMIT_S = 1.0

type MakeSource = Callable[..., Awaitable[ConfigMapRoutingSource]]


@pytest.fixture
def core(kubeconfig: Path) -> kubernetes.client.CoreV1Api:
    """The operator's side: a kubernetes client that writes the ConfigMap."""
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    return kubernetes.client.CoreV1Api(client)


@pytest.fixture
def name() -> str:
    return f"routing-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def make_source(kubeconfig: Path, name: str) -> AsyncIterator[MakeSource]:
    """Start sources (API replicas) on this test's ConfigMap; stop them all afterwards."""
    started: list[ConfigMapRoutingSource] = []

    async def make(**overrides: Any) -> ConfigMapRoutingSource:
        kwargs: dict[str, Any] = {
            "namespace": NAMESPACE,
            "name": name,
            "key": KEY,
            "kubeconfig": str(kubeconfig),
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


def create_configmap(core: kubernetes.client.CoreV1Api, name: str, data: dict[str, str]) -> None:
    meta = kubernetes.client.V1ObjectMeta(name=name, namespace=NAMESPACE)
    body = kubernetes.client.V1ConfigMap(metadata=meta, data=data)
    core.create_namespaced_config_map(NAMESPACE, body)


def patch_percentage(core: kubernetes.client.CoreV1Api, name: str, value: str) -> None:
    core.patch_namespaced_config_map(name, NAMESPACE, {"data": {KEY: value}})


async def wait_for(condition: Callable[[], bool], within: float) -> float | None:
    """Seconds until `condition()` held (polled every 10 ms), or None after `within` s."""
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if condition():
            return elapsed
        if elapsed > within:
            return None
        await asyncio.sleep(0.01)


def error_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("ingestion_routing_config_errors_total", {"reason": reason})
    return value or 0.0


def counted_more_than(reason: str, before: float) -> bool:
    return error_count(reason) > before


def all_at(replicas: list[ConfigMapRoutingSource], percentage: int) -> bool:
    return all(r.current.percentage == percentage for r in replicas)


def late_config_for(port: int, path: Path) -> Path:
    """A kubeconfig for http://127.0.0.1:port (nothing may be listening there yet)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_two_replicas_follow_a_patch_within_one_second(
    core: kubernetes.client.CoreV1Api, name: str, make_source: MakeSource
) -> None:
    # given two API replicas watching a ConfigMap at 10%
    create_configmap(core, name, {KEY: "10"})
    replicas = [await make_source(), await make_source()]
    assert all(r.ready and r.current.percentage == 10 for r in replicas)
    for value in (25, 50, 100):
        # when the operator patches the percentage
        patch_percentage(core, name, str(value))
        # then both replicas apply it within a second of the patch returning
        elapsed = await wait_for(partial(all_at, replicas, value), PROPAGATION_LIMIT_S)
        assert elapsed is not None, [r.current for r in replicas]
        assert elapsed < PROPAGATION_LIMIT_S


async def test_malformed_values_keep_the_last_good_percentage(
    core: kubernetes.client.CoreV1Api,
    name: str,
    make_source: MakeSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a replica at 20%
    create_configmap(core, name, {KEY: "20"})
    source = await make_source()
    assert source.current.percentage == 20
    for bad, reason in (("abc", "not_an_integer"), ("150", "out_of_range")):
        before = error_count(reason)
        # when the ConfigMap gets a malformed value
        patch_percentage(core, name, bad)
        # then the error is counted once and the replica stays at 20%
        assert await wait_for(partial(counted_more_than, reason, before), 2.0) is not None
        await asyncio.sleep(0.2)
        assert error_count(reason) == before + 1
        assert source.current.percentage == 20
        # and an ERROR names the value and the reason
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any(repr(bad) in m and reason in m for m in errors), errors
    # and a good value afterwards is applied again
    patch_percentage(core, name, "30")
    assert await wait_for(lambda: source.current.percentage == 30, PROPAGATION_LIMIT_S) is not None


async def test_absent_configmap_means_fallback_until_created(
    core: kubernetes.client.CoreV1Api, name: str, make_source: MakeSource
) -> None:
    # given no ConfigMap yet and a replica with a 5% fallback
    changes: list[RoutingConfig] = []
    source = await make_source(fallback=RoutingConfig(percentage=5), on_change=changes.append)
    # then it is ready (the API answered) and routes at the fallback
    assert source.ready
    assert source.current == RoutingConfig(percentage=5)
    # when the operator creates the ConfigMap
    create_configmap(core, name, {KEY: "40", "parallel": "true", "shadowSampleRate": "0.5"})
    # then its config is applied within a second, and on_change hears of it
    expected = RoutingConfig(percentage=40, parallel=True, shadow_sample_rate=0.5)
    assert await wait_for(lambda: source.current == expected, PROPAGATION_LIMIT_S) is not None
    assert changes == [expected]


async def test_deleted_configmap_keeps_the_last_config(
    core: kubernetes.client.CoreV1Api,
    name: str,
    make_source: MakeSource,
) -> None:
    # given a replica at 35%
    create_configmap(core, name, {KEY: "35"})
    source = await make_source()
    assert source.current.percentage == 35
    # when the ConfigMap is deleted
    core.delete_namespaced_config_map(name, NAMESPACE)
    # then the replica stays at 35% (the emulator, unlike an API server, may drop the
    # DELETED event between two watches, so the warning itself is not awaited here)
    await asyncio.sleep(1.0)
    assert source.current.percentage == 35
    # and a re-created ConfigMap is applied
    create_configmap(core, name, {KEY: "45"})
    assert await wait_for(lambda: source.current.percentage == 45, PROPAGATION_LIMIT_S) is not None


async def test_unreachable_api_leaves_the_source_unready_on_fallback(
    tmp_path: Path, make_source: MakeSource
) -> None:
    # given a kubeconfig pointing at a closed port
    closed = late_config_for(free_port(), tmp_path / "kubeconfig")
    # when a replica starts
    source = await make_source(kubeconfig=str(closed), fallback=RoutingConfig(percentage=3))
    await asyncio.sleep(0.5)  # a few background retries
    # then it is not ready, routes at the fallback and says so
    assert not source.ready
    assert source.current == RoutingConfig(percentage=3)
    assert "not ready" in source.describe()
    # and stop() returns promptly
    start = time.perf_counter()
    await source.stop()
    assert time.perf_counter() - start < 10.0  # promptly: well before any watch timeout


async def test_gauge_and_update_counter_show_the_applied_value(
    core: kubernetes.client.CoreV1Api, name: str, make_source: MakeSource
) -> None:
    # given a replica applying 33%
    updates_before = REGISTRY.get_sample_value("ingestion_routing_config_updates_total") or 0.0
    create_configmap(core, name, {KEY: "33"})
    source = await make_source()
    # then the gauge shows 33 and one update was counted
    assert source.current.percentage == 33
    assert REGISTRY.get_sample_value("ingestion_rollout_percentage") == 33
    # when the percentage changes
    patch_percentage(core, name, "66")
    assert await wait_for(lambda: source.current.percentage == 66, PROPAGATION_LIMIT_S) is not None
    # then the gauge follows and each applied change was counted
    assert REGISTRY.get_sample_value("ingestion_rollout_percentage") == 66
    updates = REGISTRY.get_sample_value("ingestion_routing_config_updates_total")
    assert updates == updates_before + 2


async def test_kubectl_patch_is_picked_up(
    core: kubernetes.client.CoreV1Api,
    name: str,
    make_source: MakeSource,
    kubectl: str,
    kubeconfig: Path,
) -> None:
    # given a replica at 10%
    create_configmap(core, name, {KEY: "10"})
    source = await make_source()
    # when someone runs `kubectl patch --type merge`
    patch = '{"data":{"percentage":"60"}}'
    process = await asyncio.create_subprocess_exec(
        kubectl, "--kubeconfig", str(kubeconfig), "-n", NAMESPACE,
        "patch", "configmap", name, "--type", "merge", "-p", patch,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert b"patched" in out
    # then the replica applies it within a second
    assert await wait_for(lambda: source.current.percentage == 60, PROPAGATION_LIMIT_S) is not None


async def test_source_recovers_when_the_api_comes_up_later(
    tmp_path: Path, make_source: MakeSource, name: str, kube_emulator: KubeEmulator
) -> None:
    # (kube_emulator is requested so the session's kmock server starts before this one:
    # kmock's in-process servers must be stopped in the reverse order of their start.)
    # given a replica started while nothing listens on the API port
    port = free_port()
    late_config = tmp_path / "kubeconfig"
    source = await make_source(kubeconfig=str(late_config_for(port, late_config)))
    assert not source.ready
    # when an API server comes up there, holding the ConfigMap at 70%
    with KubeEmulator(port=port) as late_api:
        late_api.seed(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "data": {KEY: "70"},
            }
        )
        # then the background retries reach it: ready, and at 70% (backoff is capped at 5 s)
        assert await wait_for(lambda: source.ready, 8.0) is not None
        assert await wait_for(lambda: source.current.percentage == 70, 1.0) is not None
        await source.stop()

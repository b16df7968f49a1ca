"""The routing watch reads watch events as the API server sends them (routing_source).

The shapes below are the API server's: a BOOKMARK as kube-apiserver v1.35 sends it (taken
from tests/integration/routing, which reads the real server's events), and the ERROR a
server sends when a watch's resourceVersion has left its window (410 Gone, reason
Expired), which a fresh local control plane cannot be made to send on demand: its watch
cache still holds every version since start-up, and etcd compaction does not touch it.
"""

from __future__ import annotations

import pytest
from ingestion_api.routing_source import WatchBroken, WatchExpired, read_watch_event

BOOKMARK = {
    "type": "BOOKMARK",
    "object": {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "resourceVersion": "417",
            "annotations": {"k8s.io/initial-events-end": "true"},
        },
    },
}
GONE = {
    "type": "ERROR",
    "object": {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "too old resource version: 1 (200)",
        "reason": "Expired",
        "code": 410,
    },
}


def test_a_bookmark_only_moves_the_resume_version() -> None:
    # Given a bookmark / When read / Then it names no object, only where to resume
    kind, obj, version = read_watch_event(BOOKMARK)
    assert (kind, version) == ("BOOKMARK", "417")
    assert "name" not in obj["metadata"]


def test_410_gone_asks_for_a_fresh_list() -> None:
    # Given the server's answer to a too-old resourceVersion / Then it means "re-list now"
    with pytest.raises(WatchExpired, match="410 Expired: too old resource version"):
        read_watch_event(GONE)


def test_any_other_error_is_a_broken_watch() -> None:
    # Given an ERROR that is not 410 (here a 500) / Then it is a failure to back off from
    error = {**GONE, "object": {**GONE["object"], "code": 500, "reason": "InternalError"}}
    with pytest.raises(WatchBroken, match="500 InternalError"):
        read_watch_event(error)


def test_an_object_event_resumes_from_the_objects_version() -> None:
    event = {"type": "MODIFIED", "object": {"metadata": {"name": "r", "resourceVersion": "9"}}}
    assert read_watch_event(event) == ("MODIFIED", event["object"], "9")

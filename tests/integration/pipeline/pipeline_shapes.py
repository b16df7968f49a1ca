"""The two workflow shapes, for tests that must hold in both, and reading attempts from a
workflow's history.

A test taking a `shape` argument, parametrized with `both_shapes`, gets settings for that
shape (conftest.py): "inline" (the default: documents up to INLINE_DOCUMENT_BYTES run
download..embed as one local activity) or "chain" (INLINE_DOCUMENT_BYTES=0: every step is
its own activity, as larger documents run).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

SHAPES: dict[str, dict[str, Any]] = {"inline": {}, "chain": {"inline_document_bytes": 0}}
both_shapes = pytest.mark.parametrize("shape", sorted(SHAPES))


async def activity_attempts(handle: Any) -> list[str]:
    """The activity type of every attempt in the workflow's history, in order."""
    scheduled: dict[int, str] = {}
    attempts: list[str] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            # One event per activity, however many attempts the server made.
            attempts += [scheduled[attributes.scheduled_event_id]] * attributes.attempt
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity":
                data = json.loads(marker.details["data"].payloads[0].data)
                attempts.append(data["activity_type"])
    return attempts

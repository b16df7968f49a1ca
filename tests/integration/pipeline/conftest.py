"""Pipeline tests' settings: the workflow shape a test asks for (pipeline_shapes.py), then
its `@pytest.mark.worker_settings(**overrides)`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ingestion_worker.settings import WorkerSettings
from pipeline_shapes import SHAPES


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., WorkerSettings]
) -> WorkerSettings:
    """This test's settings: its shape's, then `@pytest.mark.worker_settings(**overrides)`."""
    callspec = getattr(request.node, "callspec", None)
    shape = callspec.params.get("shape") if callspec is not None else None
    overrides = dict(SHAPES[shape]) if shape else {}
    marker = request.node.get_closest_marker("worker_settings")
    overrides.update(marker.kwargs if marker else {})
    return make_settings(**overrides)

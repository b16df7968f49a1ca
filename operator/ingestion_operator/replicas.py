"""How many workers a share of traffic needs: the arithmetic the decisions attach to every
move, kept apart so that the workers gate (readiness.py) and the decisions share it."""

from __future__ import annotations

import math

from ingestion_operator.spec import RolloutSpec


def desired_replicas(percentage: int, min_replicas: int, max_replicas: int) -> int:
    """Workers for a traffic share: ceil(max * pct / 100), clamped to [min, max]."""
    wanted = math.ceil(max_replicas * percentage / 100)
    return max(min_replicas, min(max_replicas, wanted))


def worker_replicas(spec: RolloutSpec, percentage: int) -> dict[str, int]:
    """What every worker Deployment needs for `percentage` of the traffic."""
    return {
        worker.deployment_name: desired_replicas(
            percentage, worker.min_replicas, worker.max_replicas
        )
        for worker in spec.workers
    }

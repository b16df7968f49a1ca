"""How many tasks wait in a Temporal task queue.

The enhanced DescribeTaskQueue mode returns fresh counts (the plain stats mode
lags by about five seconds), which matters because the backlog is a rollback
signal judged within seconds.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import DescribeTaskQueueMode, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client


async def task_queue_backlog(client: Client, task_queue: str) -> int:
    """Approximate workflow + activity tasks waiting in `task_queue` (all build ids)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
        task_queue_types=[
            TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        ],
        report_stats=True,
    )
    response = await client.workflow_service.describe_task_queue(request)
    total = 0
    for version in response.versions_info.values():
        for info in version.types_info.values():
            total += info.stats.approximate_backlog_count
    return total

"""The ingestion worker process, recording when each activity runs inside it (for
bench/workflow_profile.py): one JSON line per activity execution, appended to the file
named by ACTIVITY_TIMES, with the workflow id, the activity type and the worker's clock
(epoch seconds) as the activity's code starts and ends. Everything else is the real
worker (`ingestion_worker.worker.run`)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, TextIO

from ingestion_contract.process import exit_now
from ingestion_worker.settings import get_settings
from ingestion_worker.worker import run
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor


class _Timed(ActivityInboundInterceptor):
    def __init__(self, following: ActivityInboundInterceptor, out: TextIO) -> None:
        super().__init__(following)
        self._out = out

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info, began = activity.info(), time.time()
        try:
            return await super().execute_activity(input)
        finally:
            row = {"workflow_id": info.workflow_id, "activity": info.activity_type}
            self._out.write(json.dumps(row | {"began": began, "ended": time.time()}) + "\n")


class ActivityTimes(Interceptor):
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Timed(next, self._out)


if __name__ == "__main__":
    with open(os.environ["ACTIVITY_TIMES"], "a", buffering=1) as out:
        asyncio.run(run(get_settings(), interceptors=[ActivityTimes(out)]))
    exit_now(0)

"""Fault injection that can be switched while the worker runs (demos and chaos drills).

FAULT_FAILURE_RATE / FAULT_DELAY_SECONDS are read once at start-up, so changing them
means restarting every worker, which is not how a rollback drill should look. With
FAULT_FILE set, the worker also reads a small JSON file,

    {"failureRate": 0.5, "delaySeconds": 0}

and re-reads it whenever it changes (its inode, mtime or size), so writing the file
changes the fault within one document. In Kubernetes the file is a mounted ConfigMap
key: the kubelet swaps the mounted file when the ConfigMap changes, so
`kubectl patch configmap` switches the fault on every worker without a restart.

Missing keys keep the environment's values; a missing file means the environment's
values; a malformed file is logged and ignored (the last good fault stays, as the
router does with a malformed percentage), so a typo never silently changes the fault.

The fault is applied by a worker interceptor (`FaultInterceptor`), around the graph
write activity, and the worker registers it only when one of the three settings is set:
the production activities know nothing of faults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from ingestion_worker.models import DocumentState
from ingestion_worker.settings import WorkerSettings
from ingestion_worker.steps import step_named

log = logging.getLogger(__name__)

MAX_DELAY_SECONDS = 3600.0
#: The error type an injected failure reports (what the demo and the e2e look for).
INJECTED_FAULT_ERROR = "InjectedFaultError"
#: The activity the fault applies to: the graph write, the last step of the Temporal path.
FAULTED_ACTIVITY = step_named("write_graph").activity


@dataclass(frozen=True)
class Fault:
    """What to do to a Temporal-path document's write step."""

    failure_rate: float = 0.0  # share of documents that fail (0-1), chosen by document id
    delay_seconds: float = 0.0  # extra time before every write step

    def fails(self, document_id: str) -> bool:
        """Whether this fault fails `document_id` (stable: the same id always gets the same
        answer for a given rate, so a retried step does not flip)."""
        return self.failure_rate > 0 and random.Random(document_id).random() < self.failure_rate


class FaultFileError(ValueError):
    """The fault file is not a JSON object with valid failureRate / delaySeconds."""


def parse_fault(text: str, defaults: Fault) -> Fault:
    """The fault described by a fault file's `text`; missing keys keep `defaults`."""
    try:
        data: Any = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise FaultFileError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FaultFileError("must be a JSON object")
    unknown = sorted(set(data) - {"failureRate", "delaySeconds"})
    if unknown:
        raise FaultFileError(f"unknown keys {unknown}; known: failureRate, delaySeconds")
    fault = defaults
    if "failureRate" in data:
        rate = _number(data["failureRate"], "failureRate")
        if not 0 <= rate <= 1:
            raise FaultFileError(f"failureRate must be between 0 and 1, got {rate}")
        fault = replace(fault, failure_rate=rate)
    if "delaySeconds" in data:
        delay = _number(data["delaySeconds"], "delaySeconds")
        if not 0 <= delay <= MAX_DELAY_SECONDS:
            raise FaultFileError(f"delaySeconds must be between 0 and {MAX_DELAY_SECONDS:g}")
        fault = replace(fault, delay_seconds=delay)
    return fault


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultFileError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class FaultSource:
    """The fault in force now: `defaults` (from the environment), overridden by `path`.

    `current()` costs one stat() while the file is unchanged; it is called from the
    activity threads, hence the lock.
    """

    def __init__(self, defaults: Fault, path: str | None = None) -> None:
        self.defaults = defaults
        self.path = path or None
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None  # (inode, mtime_ns, size)
        self._from_file: Fault | None = None

    def current(self) -> Fault:
        if self.path is None:
            return self.defaults
        with self._lock:
            self._refresh(self.path)
            return self._from_file if self._from_file is not None else self.defaults

    def _refresh(self, path: str) -> None:
        try:
            stat = os.stat(path)  # follows symlinks: a ConfigMap mount swaps ..data
        except FileNotFoundError:
            if self._signature is not None:
                log.info("fault file %s removed: back to the environment's fault", path)
            self._signature, self._from_file = None, None
            return
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            with open(path, encoding="utf-8") as file:
                fault = parse_fault(file.read(), self.defaults)
        except (OSError, UnicodeDecodeError, FaultFileError) as exc:
            log.warning("ignoring fault file %s (keeping %s): %s", path, self._describe(), exc)
            return
        if fault != (self._from_file or self.defaults):
            log.warning("fault from %s: %s", path, fault)
        self._from_file = fault

    def _describe(self) -> Fault:
        return self._from_file if self._from_file is not None else self.defaults


def fault_source(settings: WorkerSettings) -> FaultSource | None:
    """The fault the settings ask for; None when none of FAULT_FILE, FAULT_FAILURE_RATE or
    FAULT_DELAY_SECONDS is set (then no interceptor is registered at all)."""
    defaults = Fault(settings.fault_failure_rate, settings.fault_delay_seconds)
    if settings.fault_file is None and defaults == Fault():
        return None
    return FaultSource(defaults, settings.fault_file)


class FaultInterceptor(Interceptor):
    """Fails or slows the graph write of a share of documents, as the fault in force says."""

    def __init__(self, faults: FaultSource, activity_type: str = FAULTED_ACTIVITY) -> None:
        self.faults = faults
        self.activity_type = activity_type

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _FaultInbound(next, self)

    async def inject(self, state: DocumentState) -> None:
        """The delay (heartbeating, so a killed worker is still noticed), then the failure.

        The fault is read per document (see FaultSource), so FAULT_FILE switches it live."""
        fault = self.faults.current()
        deadline = time.monotonic() + fault.delay_seconds
        while (left := deadline - time.monotonic()) > 0:
            if activity.in_activity():
                activity.heartbeat()
            await asyncio.sleep(min(0.2, left))
        request = state.request
        if fault.fails(request.document_id):
            raise ApplicationError(
                f"injected fault for {request.source}/{request.document_id}",
                type=INJECTED_FAULT_ERROR,
                non_retryable=True,
            )


class _FaultInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: FaultInterceptor) -> None:
        super().__init__(next)
        self._owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        state = input.args[0] if input.args else None
        faulted = activity.info().activity_type == self._owner.activity_type
        if faulted and isinstance(state, DocumentState):
            await self._owner.inject(state)
        return await self.next.execute_activity(input)

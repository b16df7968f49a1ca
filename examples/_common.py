"""Shared by the examples: connect to Temporal the way the worker does (same env settings)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from ingestion_contract.process import exit_now
from ingestion_worker.settings import get_settings
from temporalio.client import Client


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--source", default="crm", help="source system of the document(s)")
    return p


async def connect() -> Client:
    settings = get_settings()
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


def task_queue() -> str:
    return get_settings().task_queue


def run(main: Callable[[], Coroutine[Any, Any, int | None]]) -> NoReturn:
    """Run an example and exit with its code (see ingestion_contract.process: the SDK can
    crash during interpreter teardown, which would hide the example's own exit code)."""
    exit_now(asyncio.run(main()) or 0)

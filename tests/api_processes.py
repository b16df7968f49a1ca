"""The ingestion API and worker as real processes, for tests that kill or fuzz them.

`python -m ingestion_api.main` and `python -m ingestion_worker.worker` are started as a
deployment would start them: configured only by the environment, from the same
`WorkerSettings` the in-process fixtures use, each with its log file.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ingestion_worker.settings import WorkerSettings

API = "ingestion_api.main"
WORKER = "ingestion_worker.worker"


def environment(settings: WorkerSettings, **extra: str) -> dict[str, str]:
    """The environment a deployed process gets for these settings (and the extra API_*)."""
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "test")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            env[field.metadata["env"]] = str(value)
    return env | extra


class Processes:
    """Started processes, each with its log; whatever is still running is killed at stop."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        name = module.split(".")[0]
        with (self.logs / f"{name}-{len(self.started)}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append(process)
        return process

    def log(self, module: str, tail: int = 4000) -> str:
        name = module.split(".")[0]
        return "\n".join(p.read_text()[-tail:] for p in sorted(self.logs.glob(f"{name}-*.log")))

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until GET /readyz answers 200; fails at once if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the process serving {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} was not ready within {timeout:g} s")

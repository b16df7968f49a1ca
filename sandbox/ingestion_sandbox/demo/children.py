"""The API, the workers and the operator as child processes of the demo's supervisor.

They run as they would in production (their own `python -m` entry points, configured
by the environment), each in its own process group with its output in the run
directory, so a failure can be read afterwards. Stopping can block (stop) or not
(request_stop, then reap on later ticks), so the kubelet can scale down without
freezing the live view while a worker finishes its in-flight activities. A child
started from the main thread is also SIGTERMed by the kernel if the supervisor dies
without cleaning up (ingestion_sandbox.servers.common's PR_SET_PDEATHSIG hook).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from ingestion_sandbox.servers.common import die_with_parent_hook, tail, terminate


class ChildProcess:
    """One child process; its stdout and stderr go to `log_path`."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_path: Path, cwd: Path
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_requested_at: float | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ChildProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the child is reaped
        self._log.write(f"$ {' '.join(self.command)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent_hook(),
        )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process else None

    def request_stop(self) -> None:
        """SIGTERM the process group and return at once (graceful shutdown runs on its own)."""
        if self.alive and self.stop_requested_at is None:
            assert self.process is not None
            self.stop_requested_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def reap(self, kill_after: float) -> bool:
        """True once the child is gone; SIGKILL it if it outlived its stop by `kill_after`."""
        if self.alive:
            assert self.process is not None
            started = self.stop_requested_at
            if started is None or time.monotonic() - started < kill_after:
                return False
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()
        return True

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL (blocking)."""
        if self.process is not None:
            terminate(self.process, grace)
        self._close_log()

    def tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

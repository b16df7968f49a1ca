"""Shared plumbing for the local servers of the sandbox and the test suite.

Every server in this package is a real process or a real socket on 127.0.0.1, so
the code under test speaks its real protocol (gRPC, Bolt, S3 over HTTP, the
Kubernetes API) instead of talking to a mock object. This module holds what the
server classes have in common: finding a free port, finding a binary (the
virtualenv's bin first, so a `pip install` is enough), starting a process with
its own temp dir and log file, waiting for readiness with a deadline and a
readable error that quotes the log, and stopping it with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

T = TypeVar("T")

LOCALHOST = "127.0.0.1"


class ServiceUnavailable(Exception):
    """A server cannot run here because a binary or package is missing."""

    def __init__(self, name: str, how_to_install: str) -> None:
        super().__init__(f"{name} is not available: {how_to_install}")
        self.name = name
        self.how_to_install = how_to_install


class ServiceStartError(RuntimeError):
    """A server was started but did not become ready (or died) in time."""


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free right now (the OS picks it; a small race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_below(limit: int, low: int = 20000, attempts: int = 200) -> int:
    """A port in [low, limit] that is free on every interface (IPv4 and IPv6), picked at random.

    For servers that cannot take an ephemeral port: FalkorDB keeps BOLT_PORT in a signed
    16-bit int (anything above 32767 silently disables Bolt) and binds it on all interfaces.
    """
    for _ in range(attempts):
        port = random.randint(low, limit)
        if _bindable(socket.AF_INET, "0.0.0.0", port) and _bindable(socket.AF_INET6, "::", port):
            return port
    raise RuntimeError(f"no free port found in [{low}, {limit}] after {attempts} attempts")


def _bindable(family: socket.AddressFamily, host: str, port: int) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, port))
            return True
    except OSError as exc:
        # No IPv6 on this host at all: only IPv4 matters.
        return family == socket.AF_INET6 and exc.errno == errno.EAFNOSUPPORT


def port_open(port: int, host: str = LOCALHOST, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_binary(name: str, how_to_install: str, extra_paths: Sequence[str] = ()) -> str:
    """Find `name` next to sys.executable (the venv's bin), then on PATH, then in extra_paths."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    for candidate in extra_paths:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ServiceUnavailable(name, how_to_install)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.05,
    describe_failure: Callable[[], str] = lambda: "",
) -> None:
    """Poll `check` until it returns True; raise ServiceStartError after `timeout` seconds.

    `check` may raise: the exception counts as "not yet" and is quoted if time runs out.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            if check():
                return
        except ServiceStartError:
            raise
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise ServiceStartError(
                f"{what} not ready after {timeout:.1f}s{detail}{describe_failure()}"
            )
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, or a note when there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class Service:
    """start()/stop() plus context-manager support; subclasses fill in _start/_stop."""

    name = "service"
    started_in: float | None = None  # seconds the last start() took

    def start(self) -> Self:
        if self.running:
            return self
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self._abort()
            raise
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        self._stop()

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        """Clean up after a failed start (default: a normal stop)."""
        self._stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProcessService(Service):
    """A server that runs as a child process with its own temp dir and log file.

    Subclasses implement `command()` and `is_ready()`; the rest is here.
    """

    ready_timeout: float = 30.0
    stop_grace: float = 10.0

    def __init__(self, ready_timeout: float | None = None, keep_dir: bool = False) -> None:
        if ready_timeout is not None:
            self.ready_timeout = ready_timeout
        self.keep_dir = keep_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None
        self.log_path: Path | None = None
        self._log_file: IO[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The server process's id (for /proc readings: CPU, memory)."""
        if self.process is None:
            raise ServiceStartError(f"{self.name} is not running")
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines) if self.log_path else "(not started)"

    def _start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.log_path = self.dir / f"{self.name}.log"
        cmd = self.command()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _stop()
        self._log_file.write(f"$ {' '.join(cmd)}\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            env=self.environment(),
            start_new_session=True,  # its own process group: signals reach its children too
            preexec_fn=die_with_parent_hook(),
        )
        wait_until(
            self._ready_or_dead,
            self.ready_timeout,
            f"{self.name} ({self.process.pid})",
            describe_failure=self._failure_details,
        )

    def _ready_or_dead(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise ServiceStartError(
                f"{self.name} exited with code {self.process.returncode} while starting"
                f"{self._failure_details()}"
            )
        return self.is_ready()

    def _failure_details(self) -> str:
        return f"\ncommand: {' '.join(self.command())}\nlog {self.log_path}:\n{self.log_tail()}"

    def _abort(self) -> None:
        keep, self.keep_dir = self.keep_dir, True  # keep the log that the error message quotes
        try:
            self._stop()
        finally:
            self.keep_dir = keep

    def _stop(self) -> None:
        if self.process is not None:
            terminate(self.process, self.stop_grace)
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.dir is not None and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def die_with_parent_hook() -> Callable[[], None] | None:
    """On Linux, SIGTERM the server if the process that started it dies (even by SIGKILL).

    The kernel ties this to the starting *thread*, so only servers started from the main
    thread (fixtures, the sandbox CLI) get it; others rely on stop() alone.
    """
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return hook


def terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after `grace` seconds."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=grace)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


class LoopThread:
    """An asyncio event loop of its own, running in a daemon thread.

    In-process HTTP servers (aiohttp, kmock) live here so that synchronous code
    (pytest fixtures, the sandbox CLI) can start them and other OS processes can
    reach them, regardless of the caller's own event loop.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run `coro` in the loop's thread and return its result (blocking the caller)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

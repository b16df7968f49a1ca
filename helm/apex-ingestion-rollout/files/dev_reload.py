"""Development only (Tilt live update, chart value liveUpdate.enabled): run a command and
restart it whenever a Python source under the live directory changes.

    python dev_reload.py --live-dir=/app/live --packages=a,b -- ingestion-api

At start, the installed packages are copied into the live directory (a writable emptyDir;
files already there are kept, so a source Tilt synced first is not overwritten) and the
directory goes first on PYTHONPATH. Tilt syncs changed sources into it; this wrapper sees
the change within a second, stops the process with SIGTERM (the process drains as in a
real shutdown) and starts it again. SIGTERM to the wrapper (pod shutdown) is passed on.
A process that exits by itself is restarted after the next source change, not at once,
so a syntax error does not spin. Standard library only: it runs in the production image.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

POLL_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 60.0


def seed(live_dir: Path, packages: Sequence[str]) -> None:
    """Copy each installed package into live_dir, keeping files already there."""
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"dev_reload: package {package!r} is not installed")
        source = Path(next(iter(spec.submodule_search_locations)))
        for path in source.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                target = live_dir / package / path.relative_to(source)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)


def snapshot(live_dir: Path) -> dict[Path, int]:
    """Modification time of every Python source under live_dir."""
    return {path: path.stat().st_mtime_ns for path in live_dir.rglob("*.py")}


def stop(child: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS; the exit code."""
    if child.poll() is None:
        child.terminate()
        try:
            return child.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
    return child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="restart a command when sources change")
    parser.add_argument("--live-dir", type=Path, required=True)
    parser.add_argument("--packages", required=True, help="comma-separated package names")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    live_dir: Path = args.live_dir
    seed(live_dir, [p for p in args.packages.split(",") if p])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(live_dir), env.get("PYTHONPATH")]))

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        print(f"dev_reload: starting {' '.join(args.command)}", file=sys.stderr, flush=True)
        child = subprocess.Popen(args.command, env=env)
        seen = snapshot(live_dir)
        while child.poll() is None and not stopping and snapshot(live_dir) == seen:
            time.sleep(POLL_SECONDS)
        if stopping:
            return stop(child)
        if child.poll() is not None:
            print(f"dev_reload: exited with {child.returncode}; waiting for a source change",
                  file=sys.stderr, flush=True)  # fmt: skip
            while not stopping and snapshot(live_dir) == seen:
                time.sleep(POLL_SECONDS)
            if stopping:
                return child.returncode
        else:
            print("dev_reload: sources changed, restarting", file=sys.stderr, flush=True)
            stop(child)


if __name__ == "__main__":
    sys.exit(main())

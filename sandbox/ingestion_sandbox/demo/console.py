"""Where the demo's words go: the terminal (live panel or plain lines) and the run's log.

On a terminal the panel is redrawn in place and the story's latest lines are part of
it; anywhere else (CI, a pipe) every story line is printed as it happens and the
panel becomes one status line every few seconds, so logs stay readable. Everything
said is also appended to demo.log in the run directory with its time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from ingestion_sandbox.demo.monitor import CLEAR


def live_wanted(mode: str, stream: TextIO = sys.stdout) -> bool:
    if mode != "auto":
        return mode == "on"
    return stream.isatty() and os.environ.get("TERM", "") not in ("", "dumb")


class Console:
    def __init__(self, live: bool, log_path: Path, t0: float, stream: TextIO = sys.stdout):
        self.live = live
        self.log_path = log_path
        self.t0 = t0
        self.stream = stream
        self.lines: list[str] = []
        self._panel_shown = False

    def say(self, text: str) -> None:
        """A line of the story: kept for the panel, printed now unless the panel is live."""
        stamped = f"+{time.monotonic() - self.t0:5.1f}s {text}"
        self.lines.append(stamped)
        with open(self.log_path, "a") as log:
            log.write(stamped + "\n")
        if not (self.live and self._panel_shown):
            print(stamped, file=self.stream, flush=True)

    def panel(self, full: str, line: str) -> None:
        """Redraw the live panel, or print the one-line form."""
        if self.live:
            self.stream.write(CLEAR + full + "\n")
            self.stream.flush()
            self._panel_shown = True
        else:
            print(line, file=self.stream, flush=True)

    def close_panel(self) -> None:
        """Leave live mode: print the full story below the last panel."""
        if self.live and self._panel_shown:
            self.stream.write("\n" + "\n".join(self.lines) + "\n")
            self.stream.flush()
        self.live = False

    def out(self, text: str) -> None:
        """Printed whatever the mode (final summary, errors)."""
        print(text, file=self.stream, flush=True)
        with open(self.log_path, "a") as log:
            log.write(text + "\n")

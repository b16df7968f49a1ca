"""Leaving a process that used the Temporal SDK without tripping over interpreter teardown.

temporalio's native runtime can crash (SIGSEGV) while the interpreter tears down
after it talked to a server, which turns a clean exit into -11 for supervisors,
scripts and tests. Once the work is done and output is flushed, skip teardown.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int = 0) -> NoReturn:
    """Flush output and logs, then exit with `code` without interpreter teardown."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)

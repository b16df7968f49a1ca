"""The one error a replay stops with: its message is all the user sees (plugin.main
prints it as `error: ...` and exits 1), so it says what is wrong and what to do."""

from __future__ import annotations


class ReplayError(Exception):
    """A replay that cannot run, or would mislead; the message says why and what to do."""

"""The replay as a picture (`--chart replay.png`): the routing share the replayed
decisions set, and each rule's value against its limit at every analysis, with the
decisions marked on every panel; the sequential judge's bounds as a band.

matplotlib is an optional dependency of the plugin (`pip install
'apex-ingestion-rollout[replay]'`): the operator's image does not need it, so without it
--chart stops with the command that installs it, before any data is read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ingestion_operator.analysis import RULES, Verdict
from ingestion_operator.replay.engine import Replay
from ingestion_operator.replay.errors import ReplayError

INSTALL = "pip install 'apex-ingestion-rollout[replay]'"
COLOURS = {
    Verdict.PASS: "tab:green",
    Verdict.FAIL: "tab:red",
    Verdict.INCONCLUSIVE: "tab:gray",
    Verdict.ERROR: "tab:purple",
}
EVENT_COLOURS = {"Warning": "tab:red", "Normal": "tab:blue"}


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend; ReplayError naming the install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReplayError(f"--chart needs matplotlib: {INSTALL}") from None
    return plt


def render(replay: Replay, path: Path, title: str) -> None:
    """Write the chart of `replay` to `path` (PNG)."""
    plt = pyplot()
    figure, axes = plt.subplots(
        1 + len(RULES), 1, sharex=True, figsize=(12, 2.2 * (1 + len(RULES))), squeeze=False
    )
    panels = [row[0] for row in axes]
    _routing(panels[0], replay)
    for panel, rule in zip(panels[1:], RULES, strict=True):
        _rule(panel, replay, rule.name)
    for panel in panels:
        for move in replay.timeline:
            panel.axvline(move.at, color=EVENT_COLOURS.get(move.type, "tab:blue"), lw=0.8, ls=":")
    figure.suptitle(title, fontsize=10)
    figure.autofmt_xdate()
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise ReplayError(f"--chart {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


def _routing(panel: Any, replay: Replay) -> None:
    times = [p.at for p in replay.points]
    panel.step(times, [p.percentage for p in replay.points], where="post", color="tab:blue")
    panel.set_ylabel("replayed\nrouting %")
    panel.set_ylim(-5, 105)
    for move in replay.timeline:
        panel.annotate(
            move.reason,
            (move.at, move.to_percentage),
            xytext=(3, 4),
            textcoords="offset points",
            fontsize=7,
            color=EVENT_COLOURS.get(move.type, "tab:blue"),
        )


def _rule(panel: Any, replay: Replay, name: str) -> None:
    """One rule's value at each analysis (coloured by verdict), its limit, its bounds."""
    found = [(a.at, m) for a in replay.analyses for m in a.metrics if m.name == name]
    limit = found[0][1].threshold if found else None
    banded = [(at, m.evidence) for at, m in found if m.evidence is not None]
    if banded:
        panel.fill_between(
            [at for at, _ in banded],
            [_finite(e.lower) for _, e in banded],
            [_finite(e.upper) for _, e in banded],
            color="tab:orange",
            alpha=0.2,
            step="post",
            label="bounds",
        )
    for verdict, colour in COLOURS.items():
        points = [
            (at, m.value)
            for at, m in found
            if m.verdict == verdict and m.value is not None and math.isfinite(m.value)
        ]
        if points:
            panel.scatter(*zip(*points, strict=True), s=6, color=colour, label=verdict.value)
    if limit is not None:
        panel.axhline(limit, color="black", ls="--", lw=1, label=f"limit {limit:g}")
    panel.set_ylabel(name, fontsize=8)
    panel.legend(loc="upper left", fontsize=6, ncol=6)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan

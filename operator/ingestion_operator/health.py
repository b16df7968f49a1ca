"""Whether an analysis lets a rollout move on, and how the decisions' messages say it.

Shared by the decisions (decisions.py) and the workers gate (readiness.py); pure.
"""

from __future__ import annotations

from datetime import timedelta

from ingestion_operator.analysis import RULES_BY_NAME, AnalysisResult, Verdict


def span(duration: timedelta) -> str:
    """A duration for messages: 4.5s, 90s, 10m, 1h30m."""
    seconds = max(0.0, duration.total_seconds())
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{rest}s" if rest else "")


def _compares_paths(name: str) -> bool:
    rule = RULES_BY_NAME.get(name)
    return rule is not None and rule.compares_paths


def promotable(analysis: AnalysisResult | None, percentage: int) -> bool:
    """A passing analysis; at 100% a rule comparing Temporal with legacy (the latency
    ratio) has no legacy side left, so an Inconclusive one alone does not block the
    final step."""
    if analysis is None:
        return False
    if analysis.verdict == Verdict.PASS:
        return True
    if percentage < 100 or analysis.verdict != Verdict.INCONCLUSIVE:
        return False
    others = [m for m in analysis.metrics if m.counted and not _compares_paths(m.name)]
    return all(m.verdict == Verdict.PASS for m in others)


def summary(analysis: AnalysisResult) -> str:
    """The messages of the rules that are not passing, for a holding message."""
    held = [m.message for m in analysis.metrics if m.counted and m.verdict != Verdict.PASS]
    return "; ".join(held) or "every rule passed"

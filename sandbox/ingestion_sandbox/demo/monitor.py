"""What the demo shows while it runs: the rollout's state and the metrics it is judged on.

The numbers come from where the operator gets them (Prometheus, over the rollout's own
analysis window) and from the control plane (routing ConfigMap, IngestionRollout
status, worker Deployment, Events), so the panel shows what the operator sees rather
than a private view. Each sample is also kept for the chart. The panel is plain text:
redrawn in place on a terminal, printed as one line per interval otherwise (CI logs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ingestion_contract.metrics import PATHS

from ingestion_sandbox.servers.prometheus import PrometheusServer

CLEAR = "\x1b[H\x1b[2J"


@dataclass
class Sample:
    at: float
    weight: int | None = None
    phase: str | None = None
    rate: dict[str, float] = field(default_factory=dict)  # finished documents per second
    error_rate: dict[str, float] = field(default_factory=dict)  # share failed, 0-1
    p99: dict[str, float] = field(default_factory=dict)  # seconds
    backlog: float | None = None
    workers_wanted: int = 0
    workers_running: int = 0
    judged: dict[str, float] = field(default_factory=dict)  # the operator's last analysis


def judged_values(status: dict[str, Any]) -> dict[str, float]:
    """{rule: value} from status.lastAnalysis: what the operator measured and judged."""
    metrics = (status.get("lastAnalysis") or {}).get("metrics") or []
    return {
        str(m["name"]): float(m["value"])
        for m in metrics
        if isinstance(m.get("value"), (int, float))
    }


class Metrics:
    """Per-path rate, error rate and latency quantile over `window`, from Prometheus."""

    def __init__(self, prometheus: PrometheusServer, window_seconds: int, quantile: float = 0.99):
        self.prometheus = prometheus
        self.window_seconds = window_seconds
        self.quantile = quantile

    def fill(self, sample: Sample) -> Sample:
        w = f"{self.window_seconds}s"
        docs = self._by_path(f"sum by (path) (increase(ingestion_documents_total[{w}]))")
        failed = self._by_path(
            f'sum by (path) (increase(ingestion_documents_total{{outcome="failure"}}[{w}]))'
        )
        buckets = f"sum by (path, le) (rate(ingestion_duration_seconds_bucket[{w}]))"
        sample.p99 = self._by_path(f"histogram_quantile({self.quantile}, {buckets})")
        for path, count in docs.items():
            sample.rate[path] = count / self.window_seconds
            if count > 0:
                sample.error_rate[path] = failed.get(path, 0.0) / count
        backlog = self._by_path("max(temporal_task_queue_backlog)")
        sample.backlog = backlog.get("")
        return sample

    def _by_path(self, promql: str) -> dict[str, float]:
        try:
            result = self.prometheus.query(promql)
        except (OSError, RuntimeError, ValueError):
            return {}
        values = {}
        for series in result:
            value = float(series["value"][1])
            if math.isfinite(value):
                values[str(series["metric"].get("path", ""))] = value
        return values


@dataclass
class PanelState:
    elapsed: float
    run_dir: str
    rollout: str
    status: dict[str, Any]
    sample: Sample | None
    documents: dict[str, int]  # submitted, finished, in_flight, per-path outcomes
    events: list[str]
    story: list[str]
    fault: str
    workers: tuple[int, int, int]  # wanted, running, ready


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.0f} ms"


def render_panel(state: PanelState) -> str:
    """The live view as text (a dozen lines plus the recent Events and story)."""
    s, status = state.sample or Sample(at=state.elapsed), state.status
    analysis = status.get("lastAnalysis") or {}
    wanted, running, ready = state.workers
    lines = [
        f"apex-ingestion-rollout demo   +{state.elapsed:5.1f}s   run: {state.run_dir}",
        f"IngestionRollout {state.rollout}: phase {status.get('phase', '-')}, "
        f"weight {s.weight if s.weight is not None else '-'}% to Temporal, "
        f"step {status.get('stepLabel', '-')}, last analysis {analysis.get('verdict', '-')}",
        f"  {str(status.get('message', ''))[:110]}",
        *[f"  {line[:130]}" for line in evidence_lines(status)],
        f"{'':14}{'temporal':>12}{'legacy':>12}",
        f"{'docs/s':14}" + "".join(f"{s.rate.get(p, 0.0):>12.1f}" for p in PATHS),
        f"{'error rate':14}" + "".join(f"{fmt_pct(s.error_rate.get(p)):>12}" for p in PATHS),
        f"{'p99 latency':14}" + "".join(f"{fmt_ms(s.p99.get(p)):>12}" for p in PATHS),
        f"backlog {s.backlog if s.backlog is not None else '-'}   workers: {wanted} wanted, "
        f"{running} running, {ready} ready   fault: {state.fault}",
        "documents: " + ", ".join(f"{k} {v}" for k, v in state.documents.items()),
        "Events:",
        *[f"  {e}" for e in state.events[-6:]],
        "Story:",
        *[f"  {line}" for line in state.story[-8:]],
    ]
    return "\n".join(lines)


def evidence_lines(status: dict[str, Any]) -> list[str]:
    """The sequential judge's rules, each with its bounds and the documents behind it
    ("error rate 0 [0, 0.11] after 32 documents inconclusive (limit 0.05)")."""
    metrics = (status.get("lastAnalysis") or {}).get("metrics") or []
    return [str(m.get("message", "")) for m in metrics if m.get("documents") is not None]


def render_line(state: PanelState) -> str:
    """The same, in one line, for logs."""
    s, status = state.sample or Sample(at=state.elapsed), state.status
    metrics = (status.get("lastAnalysis") or {}).get("metrics") or []
    judged = [
        f"{m['name']} {m.get('verdict', '-')} on {m['documents']} docs"
        for m in metrics
        if m.get("documents") is not None
    ]
    parts = [
        f"[+{state.elapsed:5.1f}s] {status.get('phase', '-')} {s.weight}%",
        *(
            f"{p} err {fmt_pct(s.error_rate.get(p))} p99 {fmt_ms(s.p99.get(p))}"
            f" {s.rate.get(p, 0.0):.1f}/s"
            for p in PATHS
        ),
        f"backlog {s.backlog if s.backlog is not None else '-'}",
        f"workers {state.workers[1]}/{state.workers[0]}",
        f"docs {state.documents.get('finished', 0)}/{state.documents.get('submitted', 0)}",
        *judged,
    ]
    return " | ".join(parts)

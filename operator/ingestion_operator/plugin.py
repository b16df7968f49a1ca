"""`kubectl ingestionrollout`: read and steer rollouts without hand-written annotations.

kubectl runs any `kubectl-<name>` executable on PATH as a plugin, so installing this
project makes `kubectl ingestionrollout status` work. The plugin speaks to the cluster
through the same kubeconfig (and --context / -n) as kubectl, and only ever does what
a user could do by hand: promote/abort/retry set the operator's annotations (which it
consumes once), pause/resume flip spec.paused. Rendering is pure, so it is tested
without a cluster. `replay` (replay/command.py) reads no rollout state: it asks what the
operator would have done over past Prometheus data.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import kubernetes
from ingestion_contract.crd import (
    ABORT_ANNOTATION,
    GROUP,
    PLURAL,
    PROMOTE_ANNOTATION,
    RETRY_ANNOTATION,
    VERSION,
)

from ingestion_operator.analysis.numbers import against, exact
from ingestion_operator.replay import command as replay_command
from ingestion_operator.replay.errors import ReplayError

MERGE_PATCH = "application/merge-patch+json"
# The CRD's printer columns (a unit test keeps the two lists identical).
COLUMNS = ("NAME", "PHASE", "WEIGHT", "STEP", "TARGET", "LAST VERDICT", "AGE")
COMMANDS = {"promote": PROMOTE_ANNOTATION, "abort": ABORT_ANNOTATION, "retry": RETRY_ANNOTATION}
HISTORY_SHOWN = 8


def age(created: str | None, now: datetime) -> str:
    """kubectl's short age: 45s, 12m, 3h, 2d."""
    if not created:
        return "<unknown>"
    seconds = int((now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def row(obj: dict[str, Any], now: datetime) -> list[str]:
    """One rollout as the printer columns show it (empty cells as kubectl leaves them)."""
    status, spec, meta = obj.get("status") or {}, obj.get("spec") or {}, obj["metadata"]
    verdict = (status.get("lastAnalysis") or {}).get("verdict", "")
    target = spec.get("targetPercentage", 100)
    cells = [meta["name"], status.get("phase", ""), status.get("currentPercentage", "")]
    cells += [status.get("stepLabel", ""), target, verdict]
    return [str(c) for c in cells] + [age(meta.get("creationTimestamp"), now)]


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, three spaces apart, like `kubectl get`."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def render_list(items: Iterable[dict[str, Any]], now: datetime) -> str:
    rows = [row(obj, now) for obj in items]
    return table([list(COLUMNS), *rows]) if rows else "No IngestionRollouts found."


def _number(value: Any, limit: Any = None) -> str:
    """A value as the operator's messages print it: with enough digits to show its order
    with `limit` (never "10 > 10")."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and isinstance(limit, int | float):
        return against(float(value), float(limit))
    return exact(float(value)) if isinstance(value, int | float) else str(value)


def _evidence(metric: dict[str, Any]) -> str:
    """The sequential judge's interval and documents ("" for the threshold judge)."""
    if "documents" not in metric:
        return ""
    lower, upper = metric.get("lower"), metric.get("upper")
    bounds = f"[{_number(lower)}, {'inf' if upper is None else _number(upper)}]"
    return f"{bounds} n={metric['documents']}"


def render_metrics(analysis: dict[str, Any]) -> list[str]:
    """Each metric against its threshold, its evidence when judged sequentially, and the
    operator's message saying why (the latency floor, the bounds, the missing data)."""
    metrics = analysis.get("metrics") or []
    sequential = any("documents" in m for m in metrics)
    head = ["METRIC", "VALUE", "THRESHOLD", "VERDICT", *(["INTERVAL"] if sequential else [])]
    rows = [
        [
            m.get("name", ""),
            _number(m.get("value"), m.get("threshold")),
            _number(m.get("threshold")),
            m.get("verdict", ""),
            *([_evidence(m)] if sequential else []),
        ]
        for m in metrics
    ]
    why = [f"  {m['message']}" for m in metrics if m.get("message")]
    return [table([head, *rows]), *why]


def render_detail(obj: dict[str, Any], now: datetime) -> str:
    """The full story of one rollout: where it is, why, what was measured, what happened."""
    status = obj.get("status") or {}
    lines = [table([list(COLUMNS), row(obj, now)]), ""]
    if status.get("message"):
        lines.append(f"Message:  {status['message']}")
    if status.get("reason"):
        lines.append(f"Reason:   {status['reason']}")
    analysis = status.get("lastAnalysis") or {}
    if analysis:
        lines += ["", f"Last analysis at {analysis.get('at', '?')}: {analysis.get('verdict')}"]
        lines += render_metrics(analysis)
    conditions = [
        [c.get("type", ""), c.get("status", ""), c.get("reason", "")]
        for c in status.get("conditions") or []
    ]
    if conditions:
        lines += ["", table([["CONDITION", "STATUS", "REASON"], *conditions])]
    history = (status.get("history") or [])[-HISTORY_SHOWN:]
    if history:
        moves = [
            [h["at"], f"{h['fromPercentage']}% -> {h['toPercentage']}%", h["phase"], h["reason"]]
            for h in history
        ]
        lines += ["", table([["AT", "MOVE", "PHASE", "REASON"], *moves])]
    return "\n".join(lines)


class Rollouts:
    """The few API calls the plugin makes, in one namespace."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api = kubernetes.client.CustomObjectsApi(api)
        self.namespace = namespace

    def get(self, name: str) -> dict[str, Any]:
        found: Any = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return dict(found)

    def list(self) -> list[dict[str, Any]]:
        found: Any = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return sorted(found.get("items") or [], key=lambda o: o["metadata"]["name"])

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, body, _content_type=MERGE_PATCH
        )


def show(rollouts: Rollouts, name: str | None) -> str:
    now = datetime.now(UTC)
    return render_detail(rollouts.get(name), now) if name else render_list(rollouts.list(), now)


def watch(rollouts: Rollouts, name: str | None, interval: float, limit: float | None) -> None:
    """Print the view again whenever it changes (polling is enough for a human's eyes)."""
    deadline = None if limit is None else time.monotonic() + limit
    shown = ""
    while deadline is None or time.monotonic() < deadline:
        view = show(rollouts, name)
        if view != shown:
            print(f"--- {datetime.now(UTC).isoformat(timespec='seconds')}\n{view}", flush=True)
            shown = view
        time.sleep(interval)


def steer(rollouts: Rollouts, command: str, name: str) -> str:
    """promote/abort/retry as the operator's annotations; pause/resume as spec.paused."""
    if command in COMMANDS:
        stamp = datetime.now(UTC).isoformat()
        rollouts.patch(name, {"metadata": {"annotations": {COMMANDS[command]: stamp}}})
        return f"ingestionrollout/{name} {command} requested (the operator acts on its next tick)"
    rollouts.patch(name, {"spec": {"paused": command == "pause"}})
    return f"ingestionrollout/{name} {'paused' if command == 'pause' else 'resumed'}"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kubectl ingestionrollout", description="Read and steer IngestionRollouts."
    )
    top.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube)")
    top.add_argument("--context", help="kubeconfig context to use")
    top.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    sub = top.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="list rollouts, or show one in detail")
    status.add_argument("name", nargs="?")
    status.add_argument("-w", "--watch", action="store_true", help="keep printing changes")
    status.add_argument("--interval", type=float, default=1.0, help="watch poll seconds")
    status.add_argument("--watch-for", type=float, help="stop watching after N seconds")
    helps = {
        "promote": "skip the rest of the current step's wait and analysis",
        "abort": "roll back to 0% now",
        "retry": "start again from the first step after a rollback or failure",
        "pause": "hold traffic where it is (spec.paused=true)",
        "resume": "carry on (spec.paused=false)",
    }
    for command, text in helps.items():
        sub.add_parser(command, help=text).add_argument("name")
    replay_command.add_parser(sub)
    return top


def connect(args: argparse.Namespace) -> Rollouts:
    api = kubernetes.config.new_client_from_config(
        config_file=args.kubeconfig, context=args.context
    )
    namespace = args.namespace
    if not namespace:
        contexts, active = kubernetes.config.list_kube_config_contexts(args.kubeconfig)
        if args.context:
            active = next((c for c in contexts if c["name"] == args.context), active)
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
    return Rollouts(api, namespace)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "replay":
            return replay_command.run(args, lambda: connect(args))
        rollouts = connect(args)
        if args.command == "status" and args.watch:
            watch(rollouts, args.name, args.interval, args.watch_for)
        elif args.command == "status":
            print(show(rollouts, args.name))
        else:
            print(steer(rollouts, args.command, args.name))
    except kubernetes.client.ApiException as exc:
        what = f"ingestionrollout/{getattr(args, 'name', None) or ''}".rstrip("/")
        reason = "not found" if exc.status == 404 else f"{exc.status} {exc.reason}"
        print(f"error: {what}: {reason}", file=sys.stderr)
        return 1
    except (kubernetes.config.ConfigException, OSError) as exc:
        print(f"error: cannot reach the cluster: {exc}", file=sys.stderr)
        return 1
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`kubectl ingestionrollout replay`: what the operator would have done over a past range.

    kubectl ingestionrollout replay NAME|-f rollout.yaml --from T --to T [--step 30s]
        [--set analysis.thresholds.maxErrorRate=0.03 ...] [--judge threshold|sequential]
        [--prometheus-url URL] [--output text|json] [--chart replay.png]
        [--compare [PATH=VALUE ...]] [--allow-gaps] [--timeout 30]

The rollout comes from a manifest or from the cluster (the spec as the API server stored
it); its Prometheus is the spec's unless --prometheus-url names another (a port-forward,
say). `--compare` replays a second spec over the same data: the first with these further
`--set`s, or, with none, the other judge. Everything the user can get wrong ends in one
line on stderr and exit code 1 (plugin.main), never a traceback.

Parsing is here and cheap; the replay's modules are imported only when the subcommand
runs, so `kubectl ingestionrollout status` stays quick.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingestion_operator.plugin import Rollouts
    from ingestion_operator.replay.engine import Replay
    from ingestion_operator.replay.history import Grid, Reader
    from ingestion_operator.replay.report import Context
    from ingestion_operator.spec import RolloutSpec

#: A replay of more instants than this is refused (a larger --step is the answer).
MAX_INSTANTS = 1_000_000


def add_parser(sub: Any) -> None:
    """The `replay` subcommand and its options."""
    replay = sub.add_parser(
        "replay",
        help="what the operator would have done over past Prometheus data",
        description="Replay the operator's analysis and decisions over a past range of "
        "Prometheus data. The metrics are what really happened; the percentages are what "
        "the replayed decisions would have set.",
    )
    replay.add_argument("name", nargs="?", help="a rollout in the cluster (or use -f)")
    replay.add_argument("-f", "--filename", help="a manifest holding one IngestionRollout")
    replay.add_argument("--from", dest="start", required=True, help="RFC 3339, unix s, now-7d")
    replay.add_argument("--to", dest="end", default="now", help="the range's end (default now)")
    replay.add_argument("--step", help="time between instants (default: the analysis interval)")
    replay.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="change the spec, e.g. analysis.thresholds.maxErrorRate=0.03 (repeatable)",
    )
    replay.add_argument("--judge", choices=("threshold", "sequential"), help="override the judge")
    replay.add_argument("--prometheus-url", help="default: the spec's analysis.prometheusUrl")
    replay.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    replay.add_argument("-o", "--output", choices=("text", "json"), default="text")
    replay.add_argument("--chart", help="also write a PNG chart here (needs the [replay] extra)")
    replay.add_argument(
        "--compare",
        nargs="*",
        metavar="PATH=VALUE",
        help="replay a second spec too: these --set changes on top, or the other judge",
    )
    replay.add_argument(
        "--allow-gaps", action="store_true", help="replay instants without data as no data"
    )


@dataclass(frozen=True)
class Variant:
    """One spec to replay, and how to call it next to the other."""

    spec: RolloutSpec
    label: str


def run(args: argparse.Namespace, connect: Callable[[], Rollouts]) -> int:
    """The subcommand; ReplayError (and the plugin's cluster errors) are the caller's."""
    from ingestion_operator.replay.chart import pyplot
    from ingestion_operator.replay.history import Reader

    if args.chart:
        pyplot()  # before any request: a missing extra is known at once
    name, variants = variants_of(args, connect)
    grid = grid_of(args, variants[0].spec)
    reader = Reader(provider_for(args, variants[0].spec), grid, args.allow_gaps)
    replays = [(replay_one(reader, grid, v.spec), context_of(name, v, reader)) for v in variants]
    if args.output == "json":
        print(json.dumps(as_json(replays), indent=2))
    else:
        print(as_text(replays))
    if args.chart:
        write_chart(Path(args.chart), replays)
    return 0


def as_text(replays: list[tuple[Replay, Context]]) -> str:
    from ingestion_operator.replay import report

    if len(replays) == 2:
        (a, context_a), (b, context_b) = replays
        return report.render_comparison(a, b, context_a, context_b)
    return report.render_text(*replays[0])


def as_json(replays: list[tuple[Replay, Context]]) -> dict[str, Any]:
    from ingestion_operator.replay import report

    if len(replays) == 2:
        (a, context_a), (b, context_b) = replays
        return report.comparison_json(a, b, context_a, context_b)
    return report.render_json(*replays[0])


def variants_of(
    args: argparse.Namespace, connect: Callable[[], Rollouts]
) -> tuple[str, list[Variant]]:
    """The rollout's name and the one or two specs to replay."""
    from ingestion_operator.replay.errors import ReplayError
    from ingestion_operator.replay.inputs import (
        load_manifest,
        rollout_name,
        rollout_spec,
        with_sets,
    )

    if bool(args.name) == bool(args.filename):
        raise ReplayError("name a rollout in the cluster, or give -f rollout.yaml (one of them)")
    manifest = load_manifest(args.filename) if args.filename else connect().get(args.name)
    name = rollout_name(manifest, args.filename or args.name)
    raw = with_sets(manifest.get("spec") or {}, args.sets)
    if args.judge:
        raw = with_sets(raw, [f"analysis.judge={args.judge}"])
    given = " ".join(args.sets + ([f"--judge {args.judge}"] if args.judge else []))
    first = Variant(rollout_spec(raw, "the rollout's spec"), given or "as given")
    if args.compare is None:
        return name, [first]
    changes = list(args.compare)
    if not changes:
        other = "threshold" if first.spec.analysis.judge.value == "sequential" else "sequential"
        changes = [f"analysis.judge={other}"]
    second = rollout_spec(with_sets(raw, changes), "--compare")
    return name, [first, Variant(second, " ".join(changes))]


def grid_of(args: argparse.Namespace, spec: RolloutSpec) -> Grid:
    from ingestion_operator.replay.errors import ReplayError
    from ingestion_operator.replay.history import Grid
    from ingestion_operator.replay.inputs import parse_span, parse_time, time_range

    now = datetime.now(UTC)
    start, end = time_range(
        parse_time(args.start, now, "--from"), parse_time(args.end, now, "--to"), now
    )
    step = parse_span(args.step) if args.step else int(spec.analysis.interval.total_seconds())
    step = max(1, step)
    if (end - start) // step + 1 > MAX_INSTANTS:
        raise ReplayError(
            f"{(end - start) // step + 1} instants at a step of {step}s: at most "
            f"{MAX_INSTANTS}; use a larger --step or a shorter range"
        )
    return Grid(start, end, step)


def provider_for(args: argparse.Namespace, spec: RolloutSpec) -> Any:
    from ingestion_operator.metricproviders import make_provider
    from ingestion_operator.replay.errors import ReplayError

    if args.timeout <= 0:
        raise ReplayError(f"--timeout must be > 0: {args.timeout}")
    url = args.prometheus_url or spec.analysis.prometheus_url
    try:
        return make_provider(spec.analysis.provider, url=url, timeout=args.timeout)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None


def replay_one(reader: Reader, grid: Grid, spec: RolloutSpec) -> Replay:
    from ingestion_operator.replay.engine import replay

    history = reader.history(spec.analysis)
    return asyncio.run(replay(spec, grid.instants(), history.measure))


def context_of(name: str, variant: Variant, reader: Reader) -> Context:
    from ingestion_operator.replay.report import Context
    from ingestion_operator.spec import Judge

    grid = reader.grid
    sequential = variant.spec.analysis.judge == Judge.SEQUENTIAL
    return Context(
        rollout=f"ingestionrollout/{name}",
        label=variant.label,
        prometheus=reader.provider.url,
        semantics=reader.semantics.name if sequential else "",
        start=grid.instant(0),
        end=grid.instant(-1),
        step=grid.step,
        requests=reader.provider.requests,
    )


def write_chart(path: Path, replays: list[tuple[Replay, Context]]) -> None:
    """One chart per replay: the path itself, then path-b.png for a comparison's B."""
    from ingestion_operator.replay.chart import render
    from ingestion_operator.replay.history import iso

    for index, (replay, context) in enumerate(replays):
        target = path if index == 0 else path.with_name(f"{path.stem}-b{path.suffix}")
        label = f" ({context.label})" if len(replays) > 1 else ""
        title = (
            f"{context.rollout}{label}: what-if replay {iso(context.start)} to "
            f"{iso(context.end)}; metrics as they happened, routing as replayed"
        )
        render(replay, target, title)
        print(f"chart: {target}", file=sys.stderr)

"""What a user hands `kubectl ingestionrollout replay`, checked before anything is read:
the times and the step, the rollout (a manifest or the cluster's copy) and the `--set`
changes to its spec. Every mistake is a ReplayError whose message names the argument
and what would be accepted; nothing here raises anything else.

A `--set` path is checked against the CRD's schema segment by segment (an unknown field
names the fields known there), its value is read as YAML (0.03, true, [10, 50], 30s),
and the changed spec must pass the same admission as `kubectl apply`
(crd_validation.validate_rollout) and parse as the operator parses it (handlers.parse).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import yaml
from ingestion_contract.crd import KIND

from ingestion_operator.crd_validation import rollout_schema
from ingestion_operator.handlers import parse
from ingestion_operator.replay.errors import ReplayError
from ingestion_operator.replay.history import iso
from ingestion_operator.spec import RolloutSpec

_SPAN = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_RELATIVE = re.compile(r"^now(?:-(.+))?$")
_UNITS = (86_400, 3_600, 60, 1)


def parse_span(text: str, what: str = "--step") -> int:
    """'30s', '5m', '1h30m', '7d' -> whole seconds (at least 1)."""
    match = _SPAN.match(text.strip()) if text else None
    if not match or not any(match.groups()):
        raise ReplayError(f"{what} {text!r}: use a duration such as 30s, 5m, 1h30m or 7d")
    seconds = sum(int(g or 0) * unit for g, unit in zip(match.groups(), _UNITS, strict=True))
    if seconds < 1:
        raise ReplayError(f"{what} {text!r} must be at least 1s")
    return seconds


def parse_time(text: str, now: datetime, what: str) -> datetime:
    """An instant: RFC 3339 / ISO 8601 (no offset: UTC), unix seconds, `now` or `now-7d`;
    returned in UTC, to the whole second."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        ago = parse_span(relative.group(1), what) if relative.group(1) else 0
        at = now - timedelta(seconds=ago)
    else:
        try:
            at = datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError, OSError):
            try:
                at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ReplayError(
                    f"{what} {text!r}: use RFC 3339 (2025-06-03T14:00:00Z), unix seconds, "
                    "now or now-<duration> (now-7d)"
                ) from None
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(microsecond=0)


def time_range(start: datetime, end: datetime, now: datetime) -> tuple[int, int]:
    """(start, end) in unix seconds, refused when empty, reversed or in the future."""
    if end > now:
        raise ReplayError(f"--to {iso(end)} is in the future (now: {iso(now)}): replay the past")
    if start > end:
        raise ReplayError(f"--from {iso(start)} is after --to {iso(end)}")
    if start == end:
        raise ReplayError(f"empty range: --from and --to are both {iso(start)}")
    return int(start.timestamp()), int(end.timestamp())


def load_manifest(path: str) -> dict[str, Any]:
    """The one IngestionRollout in a YAML file (others are ignored)."""
    try:
        with open(path, encoding="utf-8") as stream:
            documents = [d for d in yaml.safe_load_all(stream) if isinstance(d, dict)]
    except OSError as exc:
        raise ReplayError(f"-f {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ReplayError(f"-f {path}: not YAML: {exc}") from None
    rollouts = [d for d in documents if d.get("kind") == KIND]
    if len(rollouts) != 1:
        raise ReplayError(f"-f {path}: expected one {KIND}, found {len(rollouts)}")
    return rollouts[0]


def rollout_name(manifest: Mapping[str, Any], fallback: str) -> str:
    return str((manifest.get("metadata") or {}).get("name") or fallback)


def with_sets(spec: Mapping[str, Any], sets: Iterable[str]) -> dict[str, Any]:
    """A copy of `spec` with every `PATH=VALUE` applied (PATH relative to spec)."""
    changed = copy.deepcopy(dict(spec))
    for item in sets:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise ReplayError(f"--set {item!r}: use PATH=VALUE, e.g. analysis.judge=sequential")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if value is None:
            raise ReplayError(f"--set {item!r}: no value")
        _assign(changed, path.strip().split("."), value, item)
    return changed


def _assign(spec: dict[str, Any], parts: list[str], value: Any, item: str) -> None:
    """Set spec[parts...] = value, each segment checked against the CRD's schema."""
    schema = rollout_schema()["properties"]["spec"]
    node: Any = spec
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "spec"
        if isinstance(node, list):
            index = _index(node, part, item, where)
            schema = schema.get("items", {})
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        known = schema.get("properties")
        if known is not None and part not in known:
            raise ReplayError(
                f"--set {item!r}: {where} has no field {part!r}; known: {', '.join(sorted(known))}"
            )
        if known is None and not schema.get("additionalProperties"):
            raise ReplayError(f"--set {item!r}: {where} has no fields (it is a value)")
        schema = known[part] if known is not None else schema["additionalProperties"]
        if last:
            node[part] = value
            return
        default: list[Any] | dict[str, Any] = [] if schema.get("type") == "array" else {}
        child = node.get(part)
        if child is None:
            child = copy.deepcopy(schema.get("default", default))
            node[part] = child
        node = child


def _index(items: list[Any], part: str, item: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ReplayError(
            f"--set {item!r}: {where} is a list of {len(items)}; index it with 0..{len(items) - 1}"
        )
    return int(part)


def rollout_spec(spec: Mapping[str, Any], what: str) -> RolloutSpec:
    """The typed spec the operator would act on; ReplayError with admission's reasons."""
    parsed = parse(cast(Any, {"spec": dict(spec)}))  # a plain mapping, as kopf's Body is
    if isinstance(parsed, str):
        raise ReplayError(f"{what}: {parsed}")
    return parsed

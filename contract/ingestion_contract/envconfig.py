"""Load a frozen settings dataclass from the environment, once.

Every process (worker, API, operator) has one settings module whose fields carry
their environment variable and documentation in field metadata; this module is
the one place that knows how to read and convert them, so a bad value fails at
start-up with the variable's name instead of deep inside a request.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin, get_type_hints


def env_field(env: str, default: Any, doc: str) -> Any:
    """Declare a settings field read from `env`, with its default and documentation."""
    return dataclasses.field(default=default, metadata={"env": env, "doc": doc})


def _convert(raw: str, target: Any, env: str) -> Any:
    origin = get_origin(target)
    if origin in (Union, types.UnionType):
        non_none = [a for a in get_args(target) if a is not type(None)]
        if raw == "":
            return None
        return _convert(raw, non_none[0], env)
    try:
        if target is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if target in (int, float, str):
            return target(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {env}={raw!r}: {exc}") from exc
    raise TypeError(f"unsupported settings type {target!r} for {env}")


def load_settings[T](cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build `cls` from `environ` (default: os.environ); unset variables keep their defaults."""
    environ = os.environ if environ is None else environ
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        env = f.metadata.get("env")
        if env and env in environ:
            values[f.name] = _convert(environ[env], hints[f.name], env)
    return cls(**values)


def describe_settings(cls: type) -> list[tuple[str, str, str]]:
    """(variable, default, documentation) for every field: the source of the README table."""
    rows = []
    for f in dataclasses.fields(cls):
        rows.append((f.metadata["env"], repr(f.default), f.metadata["doc"]))
    return rows

"""Admission for IngestionRollout objects, outside the API server.

A real API server with crds/ingestionrollouts.yaml defaults and validates every rollout
(tests/integration/operator/ and the control-plane tests check that kubectl apply is
refused with the CRD's messages). This module mirrors that admission, in the API
server's order, for the places where no such server stands between the user and the
operator:

- the operator itself (handlers.parse), as defence: a cluster with an older CRD without
  the schema, or a server that does not enforce it, stores specs the schema refuses
  (even `spec: null`); the operator must turn them into phase Failed/InvalidSpec with
  the rule's message, not act on them or crash (tests/faults/test_operator_faults.py
  runs exactly that on a real server with a schema-less variant of the CRD);
- offline checks: the unit tests of the CRD's rules (tests/unit/test_crd_schema.py), the
  chart's example rollout, the demo's rollout, and the defaults generated into
  ingestion_contract.crd_defaults (hack/gen_crd_defaults.py).

The steps:

1. defaulting: `default` values of the structural schema, applied top-down (a defaulted
   object gets its own nested defaults too);
2. the OpenAPI schema (draft-4 semantics, as kube-openapi), with the Kubernetes dialect
   translated: `nullable: true` admits null, every object with `properties` rejects unknown
   fields (what kubectl's default --validate=strict gets from the server; without it the
   server prunes them), `x-kubernetes-*` keys are otherwise ignored by the validator;
3. `x-kubernetes-list-type` map/set uniqueness;
4. every `x-kubernetes-validations` CEL rule, evaluated with cel-python on the value at its
   node (`self`), for each value present; skipped, as by the API server, when a value has
   the wrong type.

Not mirrored: the API server's CEL type-checking and cost limits at CRD creation, and
transition rules (`oldSelf`, none used).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from ingestion_contract.crd import VERSION
from jsonschema import Draft4Validator, FormatChecker

__all__ = [
    "CEL_SKIPPED",
    "CRD_PATH",
    "apply_defaults",
    "cel_rules",
    "json_schema",
    "load_crd",
    "rollout_schema",
    "validate_rollout",
]

Schema = dict[str, Any]

# The CRD lives at the repository root; an image or chart can point elsewhere.
CRD_PATH = Path(
    os.environ.get(
        "INGESTION_ROLLOUT_CRD",
        Path(__file__).resolve().parents[2] / "crds" / "ingestionrollouts.yaml",
    )
)
CEL_SKIPPED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


@functools.cache
def load_crd(path: Path = CRD_PATH) -> dict[str, Any]:
    """The CustomResourceDefinition, parsed (cached: treat it as read-only)."""
    with open(path, encoding="utf-8") as stream:
        crd: dict[str, Any] = yaml.safe_load(stream)
    return crd


def rollout_schema(path: Path = CRD_PATH) -> Schema:
    """The openAPIV3Schema of the served version."""
    for version in load_crd(path)["spec"]["versions"]:
        if version["name"] == VERSION:
            schema: Schema = version["schema"]["openAPIV3Schema"]
            return schema
    raise LookupError(f"{path}: no version {VERSION}")


# ---------------------------------------------------------------------------- defaulting


def apply_defaults(obj: dict[str, Any], schema: Schema | None = None) -> dict[str, Any]:
    """A copy of `obj` with the schema's defaults applied, as the API server does.

    Like the structural defaulting algorithm: at every object, a missing property (or a null
    one whose schema is not nullable) gets a deep copy of its default; then every property
    and array item is defaulted recursively, including the values just defaulted.
    """
    result = copy.deepcopy(obj)
    _default(result, schema if schema is not None else rollout_schema())
    return result


def _default(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties", {})
        for name, prop in properties.items():
            if "default" not in prop:
                continue
            if name not in value or (value[name] is None and not prop.get("nullable")):
                value[name] = copy.deepcopy(prop["default"])
        for name, child in value.items():
            if name in properties:
                _default(child, properties[name])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(item, schema["items"])


# ------------------------------------------------------------------------- JSON Schema


def json_schema(schema: Schema) -> Schema:
    """Translate a Kubernetes structural schema into plain draft-4 JSON Schema."""
    out: Schema = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "default", "description"):
            continue
        if key == "properties":
            out[key] = {name: json_schema(prop) for name, prop in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = json_schema(value)
        else:
            out[key] = copy.deepcopy(value)
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    return out


_formats = FormatChecker(formats=())


@_formats.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time with an explicit offset (Z or +hh:mm)."""
    if not isinstance(value, str):
        return True
    if "T" not in value.upper() or datetime.fromisoformat(value).tzinfo is None:
        raise ValueError("needs a date, a time and an offset, like 2025-01-01T10:00:00Z")
    return True


@functools.cache
def _validator(path: Path) -> Draft4Validator:
    return Draft4Validator(json_schema(rollout_schema(path)), format_checker=_formats)


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "<root>"


# -------------------------------------------------------------------------------- CEL


def cel_rules(schema: Schema, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(schema path, rule) for every x-kubernetes-validations rule, e.g. ('spec.steps', {...})."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path or "<root>", rule
    for name, prop in schema.get("properties", {}).items():
        yield from cel_rules(prop, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from cel_rules(schema["items"], f"{path}[*]")


@functools.cache
def _cel_program(rule: str) -> Any:
    import celpy  # cel-python: imported on first use, as only validation needs it

    env = celpy.Environment()
    return env.program(env.compile(rule))


def _cel_errors(value: Any, schema: Schema, path: str) -> Iterator[str]:
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations", []):
        from celpy.adapter import json_to_cel

        where = (path or "<root>") + rule.get("fieldPath", "")
        message = rule.get("message") or f"failed rule: {rule['rule']}"
        try:
            result = _cel_program(rule["rule"]).evaluate({"self": json_to_cel(value)})
        except Exception as exc:  # celpy raises its own errors and Python ones alike
            result = exc
        if isinstance(result, Exception):
            yield f"{where}: {message} (rule evaluation error: {result}; rule: {rule['rule']})"
        elif not bool(result):
            yield f"{where}: {message} (rule: {rule['rule']})"
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                yield from _cel_errors(value[name], prop, f"{path}.{name}" if path else name)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _cel_errors(item, schema["items"], f"{path}[{index}]")


def _list_type_errors(value: Any, schema: Schema, path: str) -> Iterator[str]:
    if isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: list[Any] = []
        for index, item in enumerate(value):
            if list_type == "set":
                key = item
            elif list_type == "map" and isinstance(item, dict):
                key = {k: item.get(k) for k in keys}
            else:
                continue
            if key in seen:
                yield f"{path}[{index}]: duplicate entry {key!r} (list type {list_type})"
            seen.append(key)
        if "items" in schema:
            for index, item in enumerate(value):
                yield from _list_type_errors(item, schema["items"], f"{path}[{index}]")
    elif isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                yield from _list_type_errors(value[name], prop, f"{path}.{name}" if path else name)


# ----------------------------------------------------------------------------- entry


def validate_rollout(
    obj: dict[str, Any], *, defaults: bool = True, path: Path = CRD_PATH
) -> list[str]:
    """Every reason the API server would refuse `obj`; [] when it would be admitted.

    Each error reads "<field path>: <why>", e.g. "spec.steps: steps must be strictly
    increasing (...)". With defaults=True (as the API server) defaults are applied first,
    on a copy: `obj` is not changed.
    """
    schema = rollout_schema(path)
    if defaults:
        obj = apply_defaults(obj, schema)
    schema_errors = sorted(
        _validator(path).iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]
    )
    errors = [f"{_path(error.absolute_path)}: {error.message}" for error in schema_errors]
    errors += _list_type_errors(obj, schema, "")
    if any(error.validator == "type" for error in schema_errors):
        # As the API server: a value of the wrong type blocks CEL (rules assume the types).
        errors.append(f"<root>: {CEL_SKIPPED}")
    else:
        errors += _cel_errors(obj, schema, "")
    return errors

"""values.schema.json: bad values fail at install time, with a message naming the value.

Each planted bad value (tests/planted_values.py) is checked here by the jsonschema library
(the message a reader sees) and by the real `helm lint`; a real `helm install` against the
local control plane refuses the same values in tests/integration/helm/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hack_modules import load_hack
from planted_values import IDS, PLANTED

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "apex-ingestion-rollout"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


helm = load_hack("helm_chart")


def schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [
        f"/{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(values)
    ]


def test_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "layers",
    [pytest.param([], id="default"), pytest.param(["values-dev.yaml"], id="dev")],
)
def test_shipped_values_satisfy_the_schema(layers: list[str]) -> None:
    values = helm.chart_values(*(yaml.safe_load((CHART / f).read_text()) for f in layers))
    assert schema_errors(values) == []


def test_every_object_with_known_keys_refuses_unknown_ones() -> None:
    # A typo must be an error: an object that lists its keys allows no other key. (Objects
    # without a key list are deliberate free-form maps: labels, annotations, affinity...;
    # if/then conditions only add constraints to objects declared elsewhere.)
    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                yield where
            for key, child in node.items():
                if key not in ("if", "then"):
                    yield from walk(child, f"{where}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, f"{where}/{index}")

    assert list(walk(SCHEMA, "#")) == []


@pytest.mark.parametrize(("case", "override", "path"), PLANTED, ids=IDS)
def test_schema_names_the_bad_value(case: str, override: dict[str, Any], path: str) -> None:
    # Given a planted bad value merged over the chart's values, as Helm merges them
    values = helm.chart_values(override)
    # When the schema validates them / Then an error names the value's path
    errors = schema_errors(values)
    assert any(path in error for error in errors), f"{case}: {errors}"


@pytest.mark.parametrize(("case", "override", "path"), PLANTED, ids=IDS)
def test_helm_lint_rejects_the_bad_value(
    helm_cli: str, case: str, override: dict[str, Any], path: str
) -> None:
    # Given the planted value / When the real helm lints the chart with it
    result = helm.lint(helm.chart_values(override))
    # Then lint reports an error on values.yaml that names the value
    errors = [m for m in result.at_least(helm.Severity.ERROR) if m.path == "values.yaml"]
    assert any(path in m.text for m in errors), f"{case}: {result.describe()}"

"""The IngestionRollout CRD: its structural schema, defaults, CEL rules and printer columns.

No API server runs here, so objects go through ingestion_operator.crd_validation, which
mirrors admission (defaulting, OpenAPI schema, list types, CEL rules with cel-python).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ingestion_operator.crd_validation import (
    CEL_SKIPPED,
    apply_defaults,
    cel_rules,
    load_crd,
    rollout_schema,
    validate_rollout,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rollout.yaml"

DEFAULT_SPEC: dict[str, Any] = {
    "targetPercentage": 100,
    "steps": [10, 50, 100],
    "stepDuration": "10m",
    "workersReadyTimeout": "10m",
    "paused": False,
    "routing": {"configMapName": "ingestion-routing", "key": "temporalPercentage"},
    "workers": [
        {"deploymentName": "ingestion-temporal-worker", "minReplicas": 1, "maxReplicas": 10}
    ],
    "analysis": {
        "provider": "prometheus",
        "prometheusUrl": "http://prometheus-server:9090",
        "interval": "30s",
        "window": "2m",
        "counterWindow": "2m",
        "optionalRules": [],
        "judge": "threshold",
        "alpha": 0.01,
        "minSampleCount": 50,
        "failureLimit": 0,
        "consecutiveErrorLimit": 4,
        "onError": "Pause",
        "thresholds": {
            "maxErrorRate": 0.05,
            "maxLatencyRatio": 2.0,
            "latencyQuantile": 0.99,
            "maxQueueDepth": 1000,
            "maxDbConnectionErrorsPerMinute": 10,
            "minLatencyDeltaSeconds": 0.5,
        },
    },
}


def rollout(spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "ingestion.apexmemory.io/v1alpha1",
        "kind": "IngestionRollout",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {} if spec is None else spec,
    }
    if status:
        obj["status"] = status
    return obj


def example() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return obj


def with_field(dotted: str, value: Any) -> dict[str, Any]:
    """The example with one field (dotted path under the object) replaced."""
    obj = example()
    *parents, last = dotted.split(".")
    node = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return obj


def schema_nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path or "<root>", schema
    for name, prop in schema.get("properties", {}).items():
        yield from schema_nodes(prop, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from schema_nodes(schema["items"], f"{path}[*]")


# ---------------------------------------------------------------------------- the CRD


def test_crd_names_and_version() -> None:
    crd = load_crd()
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "ingestionrollouts.ingestion.apexmemory.io"
    spec = crd["spec"]
    assert spec["group"] == "ingestion.apexmemory.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "IngestionRollout",
        "listKind": "IngestionRolloutList",
        "plural": "ingestionrollouts",
        "singular": "ingestionrollout",
        "shortNames": ["ir"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_schema_is_structural_and_described() -> None:
    for path, node in schema_nodes(rollout_schema()):
        assert "type" in node, f"{path}: no type (not structural)"
        if path == "metadata":
            # A real API server refuses anything but type under metadata ("must not specify
            # anything other than name and generateName"): found by the control-plane tests.
            assert set(node) == {"type"}, f"{path}: only `type` is allowed, got {sorted(node)}"
            continue
        assert node.get("description"), f"{path}: no description"
        assert "x-kubernetes-preserve-unknown-fields" not in node, f"{path}: preserves unknown"
        if "additionalProperties" in node:  # a map (metricLabels): typed values, no properties
            assert "properties" not in node and node["additionalProperties"]["type"], path
        if node.get("x-kubernetes-list-type") == "map":
            required = node["items"].get("required", [])
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in required or "default" in node["items"]["properties"][key], path


def test_every_cel_rule_compiles_with_celpy() -> None:
    import celpy

    rules = list(cel_rules(rollout_schema()))
    assert {path for path, _ in rules} >= {"spec", "spec.steps", "spec.workers[*]"}
    env = celpy.Environment()
    for path, rule in rules:
        assert rule.get("message"), f"{path}: rule without a message"
        env.program(env.compile(rule["rule"]))  # raises CELParseError when invalid


def test_the_steps_rule_covers_max_items() -> None:
    """The index literal of the strictly-increasing rule must reach maxItems - 2."""
    steps = rollout_schema()["properties"]["spec"]["properties"]["steps"]
    ascending = list(range(1, steps["maxItems"] + 1))
    assert validate_rollout(rollout({"steps": ascending})) == []
    last_pair_swapped = [*ascending[:-2], ascending[-1], ascending[-2]]
    assert any(
        "strictly increasing" in e for e in validate_rollout(rollout({"steps": last_pair_swapped}))
    )


# ----------------------------------------------------------------------- defaulting


def test_an_empty_spec_is_fully_defaulted_and_valid() -> None:
    defaulted = apply_defaults(rollout({}))
    assert defaulted["spec"] == DEFAULT_SPEC
    assert validate_rollout(defaulted, defaults=False) == []
    assert validate_rollout(rollout({})) == []


def test_a_missing_spec_is_defaulted_too() -> None:
    obj = rollout()
    del obj["spec"]
    assert apply_defaults(obj)["spec"] == DEFAULT_SPEC


def test_defaults_fill_nested_fields_and_keep_given_values() -> None:
    spec = {"analysis": {"thresholds": {"maxErrorRate": 0.1}}, "workers": [{"deploymentName": "w"}]}
    defaulted = apply_defaults(rollout(spec))["spec"]
    assert defaulted["analysis"]["thresholds"]["maxErrorRate"] == 0.1
    assert defaulted["analysis"]["thresholds"]["maxQueueDepth"] == 1000
    assert defaulted["analysis"]["onError"] == "Pause"
    assert defaulted["workers"] == [{"deploymentName": "w", "minReplicas": 1, "maxReplicas": 10}]
    assert spec == {
        "analysis": {"thresholds": {"maxErrorRate": 0.1}},
        "workers": [{"deploymentName": "w"}],
    }


def test_the_example_shows_every_spec_field_at_its_default() -> None:
    obj = example()
    assert obj["metadata"] == {"name": "ingestion-migration", "namespace": "default"}
    assert obj["apiVersion"] == "ingestion.apexmemory.io/v1alpha1"
    assert obj["kind"] == "IngestionRollout"
    expected = copy.deepcopy(DEFAULT_SPEC)
    expected["stepOverrides"] = []
    expected["analysis"]["queries"] = {}
    expected["analysis"]["metricLabels"] = {}
    assert obj["spec"] == expected
    # minHealthyDuration has no default (unset: each step's own duration), so a value
    # would change what the example means: it is shown as a comment instead
    assert "  # minHealthyDuration: 10m\n" in EXAMPLE.read_text()
    every = set(rollout_schema()["properties"]["spec"]["properties"])
    assert set(obj["spec"]) == every - {"minHealthyDuration"}


# ----------------------------------------------------------------------- acceptance


def test_the_example_is_accepted() -> None:
    assert validate_rollout(example()) == []
    assert validate_rollout(example(), defaults=False) == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("spec.targetPercentage", 0),
        ("spec.steps", [100]),
        ("spec.stepDuration", "1h30m"),
        ("spec.stepDuration", "45s"),
        ("spec.stepOverrides", [{"step": 50, "duration": "20m"}, {"step": 100, "duration": "1h"}]),
        ("spec.analysis.queries", {"errorRate": "sum(rate(x[2m]))", "sampleCount": "42"}),
        ("spec.analysis.prometheusUrl", "https://prometheus.example.com/prom"),
        ("spec.workers.0.minReplicas", 0),
        ("spec.stepOverrides", [{"step": 50, "minHealthyDuration": "20m"}]),
        ("spec.minHealthyDuration", "90s"),
        ("spec.analysis.counterWindow", "1m"),
        ("spec.analysis.metricLabels", {"job": "ingestion", "k8s_namespace": "prod"}),
        ("spec.analysis.optionalRules", ["queueDepth", "latencyRatio"]),
        ("spec.analysis.thresholds.minLatencyDeltaSeconds", 0),
        ("spec.analysis.judge", "sequential"),
        ("spec.analysis.alpha", 0.05),
    ],
)
def test_valid_variants_are_accepted(field: str, value: Any) -> None:
    assert validate_rollout(with_field(field, value)) == []


def test_an_override_may_name_the_target_when_it_is_not_a_step() -> None:
    spec = {"targetPercentage": 70, "stepOverrides": [{"step": 70, "duration": "5m"}]}
    assert validate_rollout(rollout(spec)) == []


# ------------------------------------------------------------------------ rejection


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("spec.targetPercentage", 101, ["spec.targetPercentage", "maximum of 100"]),
        ("spec.targetPercentage", -1, ["spec.targetPercentage", "minimum of 0"]),
        ("spec.steps", [50, 10], ["spec.steps:", "strictly increasing"]),
        ("spec.steps", [10, 10], ["spec.steps:", "strictly increasing"]),
        ("spec.steps", [0], ["spec.steps[0]", "minimum of 1"]),
        ("spec.steps", [], ["spec.steps", "should be non-empty"]),
        ("spec.stepDuration", "10 minutes", ["spec.stepDuration", "does not match"]),
        ("spec.stepDuration", "0s", ["spec.stepDuration", "more than zero"]),
        ("spec.analysis.onError", "Ignore", ["spec.analysis.onError", "is not one of"]),
        ("spec.unknownField", True, ["spec", "'unknownField' was unexpected"]),
        ("spec.analysis.thresholds.maxErrorRate", 1.5, ["thresholds.maxErrorRate", "maximum of 1"]),
        ("spec.analysis.thresholds.maxLatencyRatio", 0, ["maxLatencyRatio", "less than or equal"]),
        (
            "spec.analysis.thresholds.latencyQuantile",
            1,
            ["latencyQuantile", "greater than or equal"],
        ),
        ("spec.workers.0.minReplicas", 5, ["spec.workers[0]", "minReplicas must be less"]),
        (
            "spec.analysis.prometheusUrl",
            "ftp://x",
            ["spec.analysis.prometheusUrl", "does not match"],
        ),
        ("spec.routing.configMapName", "", ["spec.routing.configMapName", "should be non-empty"]),
        (
            "spec.routing.configMapName",
            "Bad_Name",
            ["spec.routing.configMapName", "does not match"],
        ),
        ("spec.analysis.interval", "0s", ["spec.analysis.interval", "more than zero"]),
        (
            "spec.analysis.queries",
            {"errorRate": "x", "p99": "y"},
            ["queries", "'p99' was unexpected"],
        ),
        (
            "spec.stepOverrides",
            [{"step": 20, "duration": "5m"}],
            ["spec.stepOverrides", "one of spec.steps"],
        ),
        (
            "spec.stepOverrides",
            [{"step": 50, "duration": "5m"}, {"step": 50, "duration": "6m"}],
            ["spec.stepOverrides[1]", "duplicate"],
        ),
        (
            "spec.workers",
            [{"deploymentName": "w"}, {"deploymentName": "w", "maxReplicas": 3}],
            ["spec.workers[1]", "duplicate"],
        ),
        ("spec.analysis.counterWindow", "30s", ["counterWindow", "at least 1m"]),
        ("spec.analysis.judge", "bayesian", ["spec.analysis.judge", "is not one of"]),
        ("spec.analysis.alpha", 0, ["spec.analysis.alpha", "less than or equal"]),
        ("spec.analysis.alpha", 0.6, ["spec.analysis.alpha", "maximum of 0.5"]),
        ("spec.stepOverrides", [{"step": 50}], ["spec.stepOverrides[0]", "sets duration"]),
        ("spec.minHealthyDuration", "0s", ["spec.minHealthyDuration", "more than zero"]),
        ("spec.workersReadyTimeout", "0s", ["spec.workersReadyTimeout", "more than zero"]),
        ("spec.analysis.metricLabels", {"a-b": "x"}, ["metricLabels", "label names"]),
        ("spec.analysis.optionalRules", ["p99"], ["optionalRules[0]", "is not one of"]),
        (
            "spec.analysis.thresholds.minLatencyDeltaSeconds",
            -0.1,
            ["minLatencyDeltaSeconds", "minimum of 0"],
        ),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(
    field: str, value: Any, expected: list[str]
) -> None:
    obj = with_field(field, value)
    if field == "spec.workers.0.minReplicas":
        obj["spec"]["workers"][0]["maxReplicas"] = 2  # minReplicas 5 > maxReplicas 2
    errors = validate_rollout(obj)
    assert errors, f"{field}={value!r} was accepted"
    assert any(all(part in error for part in expected) for error in errors), errors


def test_a_rejected_steps_rule_names_the_rule() -> None:
    [error] = validate_rollout(rollout({"steps": [50, 10]}))
    assert error.startswith("spec.steps: steps must be strictly increasing")
    assert "self[i] < self[i + 1]" in error


def test_a_wrong_type_blocks_the_cel_rules_as_in_the_api_server() -> None:
    errors = validate_rollout(rollout({"steps": "10,50", "workers": [{"deploymentName": 1}]}))
    assert "spec.steps: '10,50' is not of type 'array'" in errors
    assert errors[-1] == f"<root>: {CEL_SKIPPED}"
    assert not any("rule" in e for e in errors[:-1]), errors


@pytest.mark.parametrize("duration, ok", [("99999h", True), ("100000h", False), ("1h0m0s", True)])
def test_durations_stay_within_go_time_duration(duration: str, ok: bool) -> None:
    """Go's ParseDuration (Kubernetes CEL) overflows past 2562047h; the pattern stops sooner."""
    assert (validate_rollout(rollout({"stepDuration": duration})) == []) is ok


def test_validation_does_not_modify_the_object() -> None:
    obj = rollout({})
    validate_rollout(obj)
    assert obj["spec"] == {}


# --------------------------------------------------------------------------- status


def sample_status() -> dict[str, Any]:
    at = "2025-06-01T10:02:00Z"
    return {
        "phase": "Progressing",
        "currentStepIndex": 1,
        "currentPercentage": 50,
        "stepsTotal": 3,
        "stepLabel": "2/3",
        "stepStartedAt": "2025-06-01T10:00:00Z",
        "observedGeneration": 1,
        "message": "holding 50% until 10:10:00",
        "lastAnalysis": {
            "at": at,
            "verdict": "Pass",
            "metrics": [
                {"name": "errorRate", "value": 0.01, "threshold": 0.05, "verdict": "Pass"},
                {
                    "name": "latencyRatio",
                    "value": None,
                    "threshold": 2.0,
                    "verdict": "Inconclusive",
                    "message": "no data",
                },
            ],
        },
        "failureCount": 0,
        "consecutiveErrors": 0,
        "healthySince": "2025-06-01T10:01:00Z",
        "workersWaitingSince": "2025-06-01T10:01:30Z",
        "reason": "WorkersNotReady",
        "history": [
            {
                "at": at,
                "fromPercentage": 10,
                "toPercentage": 50,
                "phase": "Progressing",
                "reason": "StepAdvanced",
                "message": "analysis passed at 10%",
            },
        ],
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Progressing",
                "message": "",
                "lastTransitionTime": at,
                "observedGeneration": 1,
            },
        ],
    }


def test_a_full_status_is_accepted() -> None:
    assert validate_rollout(rollout({}, **sample_status())) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"phase": "Running"}, "status.phase"),
        ({"stepStartedAt": "yesterday"}, "status.stepStartedAt"),
        ({"history": [{"toPercentage": 10}] * 51}, "status.history"),
        ({"extra": 1}, "'extra' was unexpected"),
        ({"lastAnalysis": {"verdict": "Maybe"}}, "status.lastAnalysis.verdict"),
        ({"conditions": [{"type": "Ready", "status": "Yes"}]}, "status.conditions[0]"),
    ],
)
def test_an_invalid_status_is_rejected(change: dict[str, Any], expected: str) -> None:
    status = sample_status() | change
    errors = validate_rollout(rollout({}, **status))
    assert any(expected in e for e in errors), errors


# ------------------------------------------------------------------- printer columns


def json_path(obj: Any, expression: str) -> Any:
    """kubectl's printer jsonPath for simple dotted paths (.status.phase); None if absent."""
    node = obj
    for part in expression.lstrip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def test_printer_columns() -> None:
    [version] = load_crd()["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert [(name, c["type"]) for name, c in columns.items()] == [
        ("Phase", "string"),
        ("Weight", "integer"),
        ("Step", "string"),
        ("Target", "integer"),
        ("Last verdict", "string"),
        ("Age", "date"),
    ]
    obj = apply_defaults(rollout({}, **sample_status()))
    obj["metadata"]["creationTimestamp"] = "2025-06-01T09:50:00Z"
    printed = {name: json_path(obj, c["jsonPath"]) for name, c in columns.items()}
    assert printed == {
        "Phase": "Progressing",
        "Weight": 50,
        "Step": "2/3",
        "Target": 100,
        "Last verdict": "Pass",
        "Age": "2025-06-01T09:50:00Z",
    }
    # Every column reads a field the schema defines (a typo would print <none> forever).
    schema = rollout_schema()
    for name, column in columns.items():
        node = schema
        for part in column["jsonPath"].lstrip(".").split("."):
            node = node["properties"][part] if "properties" in node else {"type": "object"}
        assert node.get("type") in ("string", "integer", "object"), name

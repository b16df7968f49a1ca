"""values.schema.json: bad values fail at install time, with a message naming the value.

Each planted bad value is checked three ways: by the jsonschema library (the message a
reader sees), by Helm's lint (real Helm, offline), and by a real `helm install` against a
private Kubernetes API emulator: Helm refuses the release before it creates any of it (it
installs crds/ first, as it always does, then reads the values).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hack_modules import load_hack
from ingestion_sandbox.servers.services import KubeEmulator, ServiceUnavailable

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "apex-ingestion-rollout"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


helm = load_hack("helm_offline")

# (id, values a user passes with -f/--set, the value's path Helm must name)
PLANTED = [
    ("negative-replicas", {"api": {"replicas": -1}}, "/api/replicas"),
    ("replicas-as-text", {"worker": {"replicas": "3"}}, "/worker/replicas"),
    ("two-operators", {"operator": {"replicas": 2}}, "/operator/replicas"),
    ("image-tag-missing", {"image": {"tag": None}}, "/image"),
    ("empty-image-repository", {"image": {"repository": ""}}, "/image/repository"),
    ("bad-image-digest", {"image": {"digest": "sha256:abc"}}, "/image/digest"),
    ("unknown-top-level-key", {"replicas": 3}, "replicas"),
    ("typo-in-a-nested-key", {"api": {"replicass": 2}}, "replicass"),
    ("openai-key-as-plain-value", {"openai": {"apiKey": "sk-123"}}, "apiKey"),
    ("neo4j-password-as-plain-value", {"neo4j": {"auth": {"password": "pw"}}}, "password"),
    (
        "token-as-plain-env",
        {"api": {"extraEnv": [{"name": "API_AUTH_TOKEN", "value": "t"}]}},
        "/api/extraEnv/0",
    ),
    ("temporal-address-without-port", {"temporal": {"address": "temporal"}}, "/temporal/address"),
    ("no-temporal-without-dev-services", {"temporal": {"address": ""}}, "/temporal/address"),
    ("prometheus-url-not-http", {"prometheus": {"url": "prometheus:9090"}}, "/prometheus/url"),
    (
        "memory-limit-missing",
        {"worker": {"resources": {"limits": {"memory": None}}}},
        "/worker/resources/limits",
    ),
    ("percentage-above-100", {"routing": {"initialPercentage": 101}}, "/routing/initialPercentage"),
    ("secret-name-not-dns", {"s3": {"existingSecret": "My_Secret"}}, "/s3/existingSecret"),
]
IDS = [case[0] for case in PLANTED]


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
def test_helm_lint_rejects_the_bad_value(case: str, override: dict[str, Any], path: str) -> None:
    # Given the planted value / When the real Helm lints the chart with it
    result = helm.lint(helm.chart_values(override))
    # Then lint reports an error on the values (helm-sdkpy drops the text: severity and path)
    errors = result.at_least(helm.Severity.ERROR)
    assert any(m.path == "values.yaml" for m in errors), f"{case}: {result.describe()}"


@pytest.fixture
def cluster() -> Iterator[KubeEmulator]:
    """A private API emulator: a failed install still leaves the CRD, which must not leak
    into the session's shared emulator."""
    try:
        kube = KubeEmulator()
    except ServiceUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true: a missing server fails instead of skipping)")
        pytest.skip(str(exc))
    with kube:
        yield kube


@pytest.mark.parametrize(
    ("case", "override", "message"),
    [
        ("negative-replicas", {"api": {"replicas": -1}}, "at '/api/replicas': minimum: got -1"),
        (
            "openai-key-as-plain-value",
            {"openai": {"apiKey": "sk-123"}},
            "at '/openai': additional properties 'apiKey' not allowed",
        ),
        ("image-tag-missing", {"image": {"tag": None}}, "at '/image': missing property 'tag'"),
    ],
)
def test_helm_install_refuses_the_release(
    cluster: KubeEmulator, tmp_path: Path, case: str, override: dict[str, Any], message: str
) -> None:
    # Given a cluster and what it holds now
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    before = set(cluster.emulator.objects)
    # When a user runs `helm install` with the bad value
    refusal = helm.install_refusal(override, kubeconfig, release=f"schema-{case}")
    # Then Helm refuses with a message naming the value
    assert refusal is not None, f"{case}: helm install accepted the bad value"
    assert "values don't meet the specifications of the schema" in refusal, refusal
    assert message in refusal, refusal
    # And nothing of the release exists: no workload, no release record (only crds/, which
    # Helm applies before it reads any value)
    created = {(key[0].plural, key[2]) for key in set(cluster.emulator.objects) - before}
    assert created <= {("customresourcedefinitions", "ingestionrollouts.ingestion.apexmemory.io")}

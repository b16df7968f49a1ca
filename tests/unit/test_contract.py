"""The contract both sides stand on: the CRD's names and defaults as the CRD has them, and
the routing percentage's one parser and one serializer agreeing with each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ingestion_contract import crd, crd_defaults
from ingestion_contract.routing import (
    MAX_PERCENTAGE,
    MIN_PERCENTAGE,
    RoutingConfigError,
    format_percentage,
    parse_percentage,
)
from ingestion_operator.crd_validation import apply_defaults, load_crd

REPO = Path(__file__).resolve().parents[2]


def test_the_crd_coordinates_are_the_crds() -> None:
    spec = load_crd()["spec"]
    names = spec["names"]
    assert (
        spec["group"],
        names["kind"],
        names["plural"],
        names["singular"],
    ) == (crd.GROUP, crd.KIND, crd.PLURAL, crd.SINGULAR)
    assert names["shortNames"] == [crd.SHORT_NAME]
    assert [v["name"] for v in spec["versions"] if v["storage"]] == [crd.VERSION]
    assert f"{spec['group']}/{crd.VERSION}" == crd.API_VERSION
    for annotation in (crd.PROMOTE_ANNOTATION, crd.ABORT_ANNOTATION, crd.RETRY_ANNOTATION):
        assert annotation.startswith(f"{spec['group']}/")


def test_the_generated_defaults_are_the_crds() -> None:
    # Given the defaults the API server would apply to an empty spec and an empty worker
    spec = apply_defaults({"spec": {}})["spec"]
    (worker,) = apply_defaults({"spec": {"workers": [{}]}})["spec"]["workers"]
    # Then the generated module holds exactly those (regenerate: hack/gen_crd_defaults.py)
    assert spec == crd_defaults.SPEC
    assert worker == crd_defaults.WORKER
    check = [sys.executable, str(REPO / "hack" / "gen_crd_defaults.py"), "--check"]
    done = subprocess.run(check, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_default_names_are_the_crds() -> None:
    spec = apply_defaults({"spec": {}})["spec"]
    assert spec["routing"]["configMapName"] == crd.DEFAULT_ROUTING_CONFIGMAP
    assert spec["routing"]["key"] == crd.DEFAULT_ROUTING_KEY
    assert spec["workers"][0]["deploymentName"] == crd.DEFAULT_WORKER_DEPLOYMENT


@given(st.integers(MIN_PERCENTAGE, MAX_PERCENTAGE))
def test_what_the_operator_writes_the_router_reads(percentage: int) -> None:
    assert parse_percentage(format_percentage(percentage)) == percentage


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("", "not_an_integer"), ("5.0", "not_an_integer"), ("1_0", "not_an_integer"),
     ("٣", "not_an_integer"), ("ten", "not_an_integer"), ("101", "out_of_range"),
     ("-1", "out_of_range")],
)  # fmt: skip
def test_the_parser_refuses_anything_but_an_integer_percentage(raw: str, reason: str) -> None:
    with pytest.raises(RoutingConfigError) as raised:
        parse_percentage(raw, "temporalPercentage")
    assert raised.value.reason == reason
    assert "temporalPercentage" in str(raised.value)


@pytest.mark.parametrize("bad", [-1, 101, True, 5.0])
def test_the_serializer_refuses_what_the_parser_would(bad: object) -> None:
    with pytest.raises(ValueError):
        format_percentage(bad)  # type: ignore[arg-type]

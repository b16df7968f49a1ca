"""The rule table is the one list of rules: the CRD offers a threshold and a query override
for each, the Prometheus provider has a query for each, and the typed spec builds its
thresholds and overrides from the CRD's defaults."""

from __future__ import annotations

import pytest
from ingestion_operator.analysis import QUERY_NAMES, RULES, SAMPLE_COUNT, THRESHOLD_KEYS, Thresholds
from ingestion_operator.crd_validation import apply_defaults, rollout_schema
from ingestion_operator.metricproviders import PROVIDERS, make_provider
from ingestion_operator.metricproviders.prometheus_queries import QUERIES
from ingestion_operator.spec import RolloutSpec

ANALYSIS = rollout_schema()["properties"]["spec"]["properties"]["analysis"]["properties"]


def test_the_crd_has_a_threshold_with_a_default_for_every_rule_and_nothing_else() -> None:
    thresholds = ANALYSIS["thresholds"]["properties"]
    assert set(thresholds) == set(THRESHOLD_KEYS)
    assert all("default" in thresholds[key] for key in THRESHOLD_KEYS)


def test_the_crd_lets_every_query_be_overridden() -> None:
    assert set(ANALYSIS["queries"]["properties"]) == set(QUERY_NAMES)


def test_the_crd_offers_exactly_the_providers_there_are() -> None:
    assert ANALYSIS["provider"]["enum"] == sorted(PROVIDERS)


def test_the_prometheus_provider_has_a_query_for_every_rule_and_floor() -> None:
    floors = {rule.floor[1] for rule in RULES if rule.floor}
    assert set(QUERIES) == {SAMPLE_COUNT, *(rule.name for rule in RULES), *floors}
    assert floors == {"latencyDeltaSeconds"}


def test_the_crd_offers_exactly_the_rules_as_optional_rules() -> None:
    assert ANALYSIS["optionalRules"]["items"]["enum"] == [rule.name for rule in RULES]


def test_the_spec_refuses_an_unknown_optional_rule() -> None:
    with pytest.raises(ValueError, match="unknown optionalRules"):
        RolloutSpec.from_spec({"analysis": {"optionalRules": ["queueDepht"]}})


def test_default_thresholds_are_the_crds() -> None:
    defaults = apply_defaults({"spec": {}})["spec"]["analysis"]["thresholds"]
    assert Thresholds().values == {key: float(value) for key, value in defaults.items()}


def test_the_spec_builds_thresholds_overrides_and_provider_itself() -> None:
    spec = RolloutSpec.from_spec(
        {"analysis": {"thresholds": {"maxErrorRate": 0.2}, "queries": {"queueDepth": "max(x)"}}}
    )
    assert spec.analysis.thresholds["maxErrorRate"] == 0.2
    assert spec.analysis.thresholds["maxLatencyRatio"] == Thresholds()["maxLatencyRatio"]
    assert spec.analysis.queries == {"queueDepth": "max(x)"}
    assert spec.analysis.provider == "prometheus"
    queries = make_provider(spec.analysis.provider, url="http://p").queries(spec.analysis)
    assert set(queries) == set(QUERY_NAMES) and queries["queueDepth"] == "max(x)"


@pytest.mark.parametrize(
    ("analysis", "problem"),
    [
        ({"queries": {"errorRatio": "vector(1)"}}, "unknown query overrides"),
        ({"queries": {"errorRate": " "}}, "empty query overrides"),
        ({"thresholds": {"maxErrorRatio": 0.1}}, "unknown thresholds"),
    ],
)
def test_the_spec_refuses_a_misspelt_rule(analysis: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RolloutSpec.from_spec({"analysis": analysis})

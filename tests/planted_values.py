"""Bad chart values a user could pass, each with the value's path Helm must name.

One list for the offline checks (tests/unit/test_helm_values_schema.py: the schema and
`helm lint`) and the server's (tests/integration/helm/test_values_schema_install.py: a
real `helm install`), so both refuse exactly the same values.
"""

from __future__ import annotations

from typing import Any

# (id, values a user passes with -f/--set, the value's path Helm must name)
PLANTED: list[tuple[str, dict[str, Any], str]] = [
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

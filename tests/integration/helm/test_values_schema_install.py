"""values.schema.json as a user meets it: `helm install` with a bad value, against a real
kube-apiserver, refuses the release with a message naming the value, and creates nothing.

The planted values are tests/planted_values.py, the same the offline tests check with the
schema and `helm lint`. All of them are tried in one namespace: a refusal leaves nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_plugin import CHART
from ingestion_sandbox.servers.control_plane import ControlPlane
from planted_values import IDS, PLANTED


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"schema-{uuid.uuid4().hex[:8]}"
    control_plane.create_namespace(name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def namespace_content(plane: ControlPlane, namespace: str) -> list[str]:
    """Every object in the namespace a release could have created (Helm's record included:
    a Secret sh.helm.release.v1.*); the namespace's own root CA ConfigMap left out."""
    kinds = "deployments,services,serviceaccounts,configmaps,secrets,roles,rolebindings,jobs"
    listed = json.loads(plane.kubectl("get", kinds, "-n", namespace, "-o", "json").stdout)
    names = [f"{i['kind']}/{i['metadata']['name']}" for i in listed["items"]]
    return [n for n in names if n not in ("ConfigMap/kube-root-ca.crt", "ServiceAccount/default")]


@pytest.mark.parametrize(("case", "override", "path"), PLANTED, ids=IDS)
def test_helm_install_refuses_the_bad_value(
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    case: str,
    override: dict[str, Any],
    path: str,
) -> None:
    """Given a planted bad value, when a user runs `helm install -f` with it, then helm exits
    non-zero with the schema's error naming the value's path, and the namespace holds
    nothing of the release (no workload, no RBAC, no release record)."""
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(override))
    answer = control_plane.helm(
        "install", f"schema-{case}", str(CHART), "-n", namespace, "-f", str(values), check=False
    )
    assert answer.returncode == 1, f"{case}: helm install accepted the bad value"
    assert "INSTALLATION FAILED: values don't meet the specifications of the schema" in (
        answer.stderr
    ), answer.stderr
    assert path in answer.stderr, answer.stderr
    assert namespace_content(control_plane, namespace) == []

"""The shape of the code, as import contracts (pyproject.toml [tool.importlinter]).

`lint-imports` runs on the real tree (every contract kept), and on a copy of the source
roots with forbidden imports planted, where it must fail and name the contracts broken:
a contract that cannot fail checks nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Source root -> the root packages in it.
SOURCE_ROOTS = {
    "contract": ["ingestion_contract"],
    "worker": ["ingestion_worker", "ingestion_api"],
    "operator": ["ingestion_operator"],
    "sandbox": ["ingestion_sandbox"],
}


def contract_names() -> dict[str, str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c["name"] for c in config["contracts"]}


def lint_imports(root: Path, *path: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with root/pyproject.toml, the packages found first on `path`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in contract_names().values():
        assert f"{name} KEPT" in result.stdout


def test_a_planted_forbidden_import_breaks_its_contract(tmp_path: Path) -> None:
    # Given a copy of every source root, the contracts with it
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for root, packages in SOURCE_ROOTS.items():
        for package in packages:
            shutil.copytree(
                REPO / root / package,
                tmp_path / root / package,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    # And two forbidden imports planted: an I/O client in the workflow, the worker in the
    # operator's decisions
    with open(tmp_path / "worker/ingestion_worker/workflows.py", "a") as workflow:
        workflow.write("\nimport boto3  # planted\n")
    with open(tmp_path / "operator/ingestion_operator/decisions.py", "a") as decisions:
        decisions.write("\nimport ingestion_worker  # planted\n")
    # When lint-imports runs on the copy
    result = lint_imports(tmp_path, *(tmp_path / root for root in SOURCE_ROOTS))
    # Then it fails, naming both contracts and the imports that broke them
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    names = contract_names()
    broken = {key for key, name in names.items() if f"{name} BROKEN" in output}
    assert broken == {"io-free-workflow", "operator-beside-worker"}, output
    assert "ingestion_worker.workflows -> boto3" in output
    assert "ingestion_operator.decisions -> ingestion_worker" in output

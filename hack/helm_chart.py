#!/usr/bin/env python3
"""Lint, render and package the Helm chart with the real `helm` CLI, no cluster needed.

    python hack/helm_chart.py lint   [-f VALUES.yaml ...] [--set-json '{"api": {...}}']
    python hack/helm_chart.py render [-f VALUES.yaml ...] [--set-json ...]   # prints YAML
    python hack/helm_chart.py package DEST_DIR

The chart tests render through this module, so what they check is what `helm template`
and `helm install` produce. The binary is $HELM, else the one hack/control-plane/build.sh
builds (the same helm the integration tests install the chart with), else `helm` on PATH.

Values (-f files and --set-json) are merged over the chart's values.yaml the way Helm merges
them (maps deeply, a null deletes a key, anything else replaces) and written as the
values.yaml of a temporary copy of the chart: rendering that copy is `helm template -f ...`.
The copy also gets one added template that hands out NOTES.txt, which `helm template`
does not print, rendered with the same values. Every helm run gets its own empty
HELM_*_HOME, so no user state leaks in.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import enum
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "apex-ingestion-rollout"
BUILD_SCRIPT = REPO / "hack" / "control-plane" / "build.sh"
RELEASE_NAME = "test-release"  # what the chart tests render as
NAMESPACE = "ingestion"  # README's namespace
HELM_HINT = "build it with the control plane: bash hack/control-plane/build.sh (needs Go)"

_NOTES_TEMPLATE = "zz-rendered-notes.yaml"
_NOTES_KIND = "RenderedNotes"  # the added template's document; never a Kubernetes object
_LINT_LINE = re.compile(r"^\[(INFO|WARNING|ERROR)\] ([^:]*): ?(.*)$")


class HelmNotFound(RuntimeError):
    """No helm binary: neither $HELM, nor the control-plane build, nor PATH has one."""


class HelmError(RuntimeError):
    """helm exited non-zero; the message is its stderr."""

    def __init__(self, command: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"`{' '.join(command)}` exited {returncode}:\n{stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


class Severity(enum.IntEnum):
    """helm lint's severities (helm.sh/helm/v3/pkg/lint/support)."""

    INFO = 1
    WARNING = 2
    ERROR = 3


@dataclasses.dataclass(frozen=True)
class LintMessage:
    severity: Severity
    path: str  # e.g. values.yaml, templates/
    text: str


@dataclasses.dataclass(frozen=True)
class LintResult:
    messages: tuple[LintMessage, ...]
    output: str  # what helm lint printed

    def at_least(self, severity: Severity) -> list[LintMessage]:
        return [m for m in self.messages if m.severity >= severity]

    def describe(self) -> str:
        return self.output.strip() or "(no output)"


@dataclasses.dataclass(frozen=True)
class Manifest:
    source: str  # template path, e.g. templates/api-deployment.yaml
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name"))


@dataclasses.dataclass(frozen=True)
class Rendered:
    manifests: tuple[Manifest, ...]
    notes: str
    text: str  # helm template's output, the notes document left out

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [m.body for m in self.manifests if m.kind == kind and m.name == name]
        if len(found) != 1:
            names = sorted(m.name for m in self.of_kind(kind))
            raise LookupError(f"expected one {kind} {name!r}, found {len(found)} among {names}")
        return found[0]


# --------------------------------------------------------------------------- the binary


def helm_binary() -> str:
    """$HELM, the control-plane build's helm, or helm on PATH; HelmNotFound otherwise."""
    candidates = [os.environ.get("HELM", "")]
    override = os.environ.get("APEX_CONTROL_PLANE_DIR")
    if override:
        candidates.append(str(Path(override) / "helm"))
    elif BUILD_SCRIPT.exists():
        answer = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--print-dir"], capture_output=True, text=True, check=False
        )
        candidates.append(str(Path(answer.stdout.strip()) / "helm"))
    candidates.append(shutil.which("helm") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise HelmNotFound(f"no helm binary found: {HELM_HINT}")


def run_helm(
    *args: str,
    kubeconfig: Path | None = None,
    check: bool = True,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """`helm ARGS` with an empty HELM_*_HOME of its own (and KUBECONFIG if given)."""
    command = [helm_binary(), *args]
    with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
        env = dict(os.environ)
        for kind in ("CACHE", "CONFIG", "DATA"):
            env[f"HELM_{kind}_HOME"] = os.path.join(home, kind.lower())
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        answer = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if check and answer.returncode != 0:
        raise HelmError(command, answer.returncode, answer.stderr)
    return answer


# --------------------------------------------------------------------------- values and copies


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over chart values: maps merge deeply, None deletes."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def chart_values(*layers: Mapping[str, Any], chart: Path = CHART) -> dict[str, Any]:
    """The chart's values.yaml with `layers` merged over it in order."""
    values: dict[str, Any] = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for layer in layers:
        values = merge_values(values, layer)
    return values


def chart_copy(workdir: Path, values: Mapping[str, Any] | None = None, chart: Path = CHART) -> Path:
    """A copy of the chart in `workdir` (symlinks resolved), its values.yaml being `values`."""
    target = workdir / chart.name
    shutil.copytree(chart, target, symlinks=False)
    if values is not None:
        (target / "values.yaml").write_text(yaml.safe_dump(dict(values), sort_keys=False))
    return target


# --------------------------------------------------------------------------- lint / render


def lint(values: Mapping[str, Any] | None = None, chart: Path = CHART) -> LintResult:
    """`helm lint` of the chart; with `values`, of a copy whose values.yaml is `values`."""
    with tempfile.TemporaryDirectory(prefix="chart-") as workdir:
        target = chart if values is None else chart_copy(Path(workdir), values, chart)
        answer = run_helm("lint", str(target), check=False)
    return LintResult(_lint_messages(answer.stdout), answer.stdout + answer.stderr)


def _lint_messages(output: str) -> tuple[LintMessage, ...]:
    """`[SEVERITY] path: text` lines; a message's continuation lines belong to its text."""
    messages: list[LintMessage] = []
    for line in output.splitlines():
        match = _LINT_LINE.match(line)
        if match:
            severity, path, text = match.groups()
            messages.append(LintMessage(Severity[severity], path, text))
        elif messages and line.strip() and not line.startswith(("==>", "1 chart", "Error:")):
            last = messages[-1]
            messages[-1] = dataclasses.replace(last, text=f"{last.text}\n{line}")
    return tuple(messages)


def render(
    values: Mapping[str, Any] | None = None,
    chart: Path = CHART,
    release: str = RELEASE_NAME,
    namespace: str = NAMESPACE,
) -> Rendered:
    """`helm template` of the chart with `values` (default: values.yaml), and NOTES.txt."""
    with tempfile.TemporaryDirectory(prefix="chart-") as workdir:
        target = chart_copy(Path(workdir), values, chart)
        name = yaml.safe_load((target / "Chart.yaml").read_text())["name"]
        (target / "templates" / _NOTES_TEMPLATE).write_text(
            f"kind: {_NOTES_KIND}\n"
            f'notes: {{{{ include "{name}/templates/NOTES.txt" . | toJson }}}}\n'
        )
        answer = run_helm("template", release, str(target), "--namespace", namespace)
    return _parse(answer.stdout)


def _parse(text: str) -> Rendered:
    manifests: list[Manifest] = []
    notes, kept = "", []
    for document in re.split(r"^---\n", text, flags=re.MULTILINE):
        header, _, body = document.partition("\n")
        if not header.startswith("# Source: "):
            continue
        source = header.removeprefix("# Source: ").split("/", 1)[1]
        obj = yaml.safe_load(body)
        if source == f"templates/{_NOTES_TEMPLATE}":
            notes = str(obj["notes"])
            continue
        kept.append(f"---\n{document}")
        if obj:
            manifests.append(Manifest(source, obj))
    return Rendered(tuple(manifests), notes, "".join(kept))


def package(dest: Path, chart: Path = CHART) -> Path:
    """`helm package` into `dest`; returns the archive's path."""
    answer = run_helm("package", str(chart), "--destination", str(dest))
    # "Successfully packaged chart and saved it to: /dest/apex-ingestion-rollout-0.1.0.tgz"
    return Path(answer.stdout.strip().rsplit(": ", 1)[1])


# --------------------------------------------------------------------------- command line


def _values_from_args(files: Sequence[str], set_json: Sequence[str]) -> dict[str, Any] | None:
    if not files and not set_json:
        return None
    layers = [yaml.safe_load(Path(f).read_text()) or {} for f in files]
    layers += [json.loads(s) for s in set_json]
    return chart_values(*layers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=["lint", "render", "package"])
    parser.add_argument("dest", nargs="?", help="package: destination directory")
    parser.add_argument("-f", "--values", action="append", default=[], help="values file")
    parser.add_argument("--set-json", action="append", default=[], help="values as JSON")
    args = parser.parse_args(argv)
    values = _values_from_args(args.values, args.set_json)
    try:
        if args.command == "lint":
            result = lint(values)
            print(result.describe())
            return 1 if result.at_least(Severity.ERROR) else 0
        if args.command == "render":
            rendered = render(values)
            print(rendered.text, end="")
            print("---\n# NOTES.txt\n# " + rendered.notes.replace("\n", "\n# "))
            return 0
        print(package(Path(args.dest or ".")))
    except (HelmNotFound, HelmError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Lint, render and package the Helm chart offline, with the real Helm library (helm-sdkpy).

No helm binary and no cluster needed:

    python hack/helm_offline.py lint   [-f VALUES.yaml ...] [--set-json '{"api": {...}}']
    python hack/helm_offline.py render [-f VALUES.yaml ...] [--set-json ...]   # prints YAML
    python hack/helm_offline.py package DEST_DIR

helm-sdkpy offers Lint, Show and Package offline but no `helm template`. Lint does render
every template with Helm's engine, and in lint mode Helm's `fail` function logs its message
instead of raising. `render` uses both: it lints a temporary copy of the chart in which the
templates are moved out of templates/ and one added template renders them all with `tpl`
and hands the text out through `fail`. The output is what `helm template` would print for
release "test-release" (lint's name) with an empty namespace (lint's), plus NOTES.txt.

Values files (-f) and --set-json are merged over the chart's values.yaml the way Helm merges
them (maps deeply, a null deletes a key, anything else replaces) and written into the
temporary copy: linting that copy is `helm lint -f ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import enum
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "apex-ingestion-rollout"
RELEASE_NAME = "test-release"  # the release name Helm's lint renders with

_MARK_START, _MARK_END = "RENDER<<", ">>RENDER"
_RENDER_TEMPLATE = (
    "{{- /* added by hack/helm_offline.py: render every moved template, hand out the text */ -}}\n"
    "{{- $out := list }}\n"
    '{{- range $path, $_ := .Files.Glob "zz-render/**" }}\n'
    '{{- $out = append $out (printf "# Source: %s\\n%s" $path (tpl ($.Files.Get $path) $)) }}\n'
    "{{- end }}\n"
    '{{- fail (printf "' + _MARK_START + "%s" + _MARK_END + '" (join "\\n---\\n" $out)) }}\n'
)
# Go's slog text handler: `... INFO funcMap fail message="<Go-quoted string>"`.
_FAIL_LOG = re.compile(r'funcMap (?:fail|required) message=("(?:[^"\\]|\\.)*")')
_GO_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\\"'])")
_GO_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class Severity(enum.IntEnum):
    """helm.sh/helm/v4/pkg/lint/support severities."""

    UNKNOWN = 0
    INFO = 1
    WARNING = 2
    ERROR = 3


@dataclasses.dataclass(frozen=True)
class LintMessage:
    severity: Severity
    path: str
    text: str  # helm-sdkpy serialises Go errors as {}: the text is usually lost


@dataclasses.dataclass(frozen=True)
class LintResult:
    messages: tuple[LintMessage, ...]
    # `fail`/`required` messages Helm logged while rendering (lint mode does not raise them).
    template_failures: tuple[str, ...]

    def at_least(self, severity: Severity) -> list[LintMessage]:
        return [m for m in self.messages if m.severity >= severity]

    def describe(self) -> str:
        lines = [f"{m.severity.name} {m.path} {m.text}".rstrip() for m in self.messages]
        lines += [f"template fail: {f}" for f in self.template_failures]
        return "\n".join(lines) or "(no messages)"


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
    lint: LintResult

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [m.body for m in self.manifests if m.kind == kind and m.name == name]
        if len(found) != 1:
            names = sorted(m.name for m in self.of_kind(kind))
            raise LookupError(f"expected one {kind} {name!r}, found {len(found)} among {names}")
        return found[0]


class RenderError(Exception):
    """The chart did not render (lint found errors, or a template called `fail`)."""


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


@contextlib.contextmanager
def _helm_home() -> Iterator[None]:
    """Helm's cache/config/data in a throw-away directory (offline, no user state)."""
    keys = ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")
    saved = {key: os.environ.get(key) for key in keys}
    with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
        for key in keys:
            os.environ[key] = os.path.join(home, key.lower())
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Capture file descriptor 2 (where Helm's Go logger writes) into the yielded list."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        captured: list[str] = []
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def _go_unquote(quoted: str) -> str:
    """Decode a Go strconv.Quote string (what slog prints for a value with spaces)."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "xuU":
            return chr(int(code[1:], 16))
        return _GO_SIMPLE.get(code, code)

    return _GO_ESCAPE.sub(one, quoted[1:-1])


def _lint_dir(chart_dir: Path) -> tuple[LintResult, str]:
    """Lint `chart_dir` in place; return the result and what Helm logged to stderr."""
    import helm_sdkpy

    with _helm_home(), _captured_stderr() as log:
        config = helm_sdkpy.Configuration()
        raw = asyncio.run(helm_sdkpy.Lint(config).run(str(chart_dir)))
    text = "".join(log)
    failures = tuple(_go_unquote(m.group(1)) for m in _FAIL_LOG.finditer(text))
    messages = tuple(
        LintMessage(
            Severity(int(m.get("Severity", 0))),
            str(m.get("Path", "")),
            json.dumps(m.get("Err")) if m.get("Err") else "",
        )
        for m in raw.get("Messages") or []
    )
    return LintResult(messages, failures), text


def _copy_chart(chart: Path, workdir: Path, values: Mapping[str, Any] | None) -> Path:
    """A copy of the chart (symlinks resolved) whose values.yaml holds `values`."""
    target = workdir / chart.name
    shutil.copytree(chart, target, symlinks=False)
    if values is not None:
        (target / "values.yaml").write_text(yaml.safe_dump(dict(values), sort_keys=False))
    return target


def lint(values: Mapping[str, Any] | None = None, chart: Path = CHART) -> LintResult:
    """`helm lint` of the chart; with `values`, of a copy whose values.yaml is `values`."""
    if values is None:
        return _lint_dir(chart)[0]
    with tempfile.TemporaryDirectory(prefix="chart-") as workdir:
        return _lint_dir(_copy_chart(chart, Path(workdir), values))[0]


def render(values: Mapping[str, Any] | None = None, chart: Path = CHART) -> Rendered:
    """Every manifest the chart renders with `values` (default: values.yaml), and NOTES.txt."""
    with tempfile.TemporaryDirectory(prefix="chart-") as workdir:
        copy_dir = _copy_chart(chart, Path(workdir), values)
        templates, moved = copy_dir / "templates", copy_dir / "zz-render"
        moved.mkdir()
        for path in sorted(templates.iterdir()):
            if path.suffix in (".yaml", ".yml", ".txt"):
                path.rename(moved / path.name)
        (templates / "zz-render.yaml").write_text(_RENDER_TEMPLATE)
        result, log = _lint_dir(copy_dir)
        outputs = [f for f in result.template_failures if f.startswith(_MARK_START)]
        others = [f for f in result.template_failures if not f.startswith(_MARK_START)]
        if others or len(outputs) != 1 or result.at_least(Severity.ERROR):
            raise RenderError(
                "the chart did not render:\n"
                + result.describe()
                + f"\nfailing templates: {_failing_templates(copy_dir)} (helm-sdkpy loses Helm's"
                " error text; `helm template` with a helm binary prints it)\nHelm's log:\n"
                + log[-4000:]
            )
    return _parse(outputs[0][len(_MARK_START) : -len(_MARK_END)], result)


def _failing_templates(copy_dir: Path) -> list[str]:
    """Which moved templates fail to render on their own (to point at the broken file)."""
    moved, parked = copy_dir / "zz-render", copy_dir / "zz-parked"
    moved.rename(parked)
    moved.mkdir()
    failing = []
    try:
        for path in sorted(parked.iterdir()):
            shutil.copy(path, moved / path.name)
            result, _ = _lint_dir(copy_dir)
            if result.at_least(Severity.ERROR):
                failing.append(f"templates/{path.name}")
            (moved / path.name).unlink()
    finally:
        moved.rmdir()
        parked.rename(moved)
    return failing


def _parse(text: str, result: LintResult) -> Rendered:
    manifests: list[Manifest] = []
    notes = ""
    for document in text.split("\n---\n# Source: "):
        header, _, body = document.removeprefix("# Source: ").partition("\n")
        source = "templates/" + header.removeprefix("zz-render/")
        if source.endswith("NOTES.txt"):
            notes = body
            continue
        for obj in yaml.safe_load_all(body):
            if obj:
                manifests.append(Manifest(source, obj))
    return Rendered(tuple(manifests), notes, result)


def package(dest: Path, chart: Path = CHART) -> Path:
    """`helm package` into `dest`; returns the archive's path."""
    import helm_sdkpy

    with _helm_home(), _captured_stderr():
        config = helm_sdkpy.Configuration()
        archive = asyncio.run(helm_sdkpy.Package(config).run(str(chart), str(dest)))
    return Path(archive)


def install_refusal(
    values: Mapping[str, Any], kubeconfig: Path, release: str = "schema-check", chart: Path = CHART
) -> str | None:
    """`helm install` with `values` (over the chart's) against the cluster of `kubeconfig`;
    Helm's error message, or None when the install went through.

    Helm validates values.schema.json before it creates anything, so values that break the
    schema never reach the cluster: this is how a user meets a bad value."""
    import helm_sdkpy

    with _helm_home(), _captured_stderr():
        config = helm_sdkpy.Configuration(namespace="default", kubeconfig=str(kubeconfig))
        install = helm_sdkpy.Install(config)
        try:
            asyncio.run(install.run(release, str(chart), values=dict(values), wait=False))
        except helm_sdkpy.HelmError as exc:
            return str(exc)
    return None


def _values_from_args(files: Sequence[str], set_json: Sequence[str]) -> dict[str, Any] | None:
    if not files and not set_json:
        return None
    layers = [yaml.safe_load(Path(f).read_text()) or {} for f in files]
    layers += [json.loads(s) for s in set_json]
    return chart_values(*layers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["lint", "render", "package"])
    parser.add_argument("dest", nargs="?", help="package: destination directory")
    parser.add_argument("-f", "--values", action="append", default=[], help="values file")
    parser.add_argument("--set-json", action="append", default=[], help="values as JSON")
    args = parser.parse_args(argv)
    values = _values_from_args(args.values, args.set_json)
    if args.command == "lint":
        result = lint(values)
        print(result.describe())
        return 1 if result.at_least(Severity.ERROR) or result.template_failures else 0
    if args.command == "render":
        rendered = render(values)
        for manifest in rendered.manifests:
            print(f"---\n# Source: {manifest.source}")
            print(yaml.safe_dump(manifest.body, sort_keys=False), end="")
        print("---\n# NOTES.txt\n# " + rendered.notes.replace("\n", "\n# "))
        return 0
    print(package(Path(args.dest or ".")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

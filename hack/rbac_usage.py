#!/usr/bin/env python3
"""What the code asks of the Kubernetes API, derived from its source, as RBAC permissions.

    python hack/rbac_usage.py operator|api|worker|uninstall   # prints the derived permissions

tests/unit/test_rbac_drift.py compares the result with the chart's rules files
(helm/apex-ingestion-rollout/files/*-rbac.yaml), both ways.

How the permissions are derived, per process (entry point from pyproject's [project.scripts]):

1. The modules it runs: the entry module and, transitively, every project module it imports.
2. `kubernetes` client calls: every attribute named like a request method of a
   `kubernetes.client.*Api` class. The method's HTTP verb and path come from the client's own
   generated source (its `_<method>_serialize`), so the mapping is the client's, not a
   hand-written table: GET on an object is `get`, GET on a collection `list` (`watch` with
   watch=True or when handed to Watch.stream), POST `create`, PUT `update`, PATCH `patch`,
   DELETE `delete`/`deletecollection`. Errors, because they cannot be checked and must not
   pass silently: a method the client does not have, called on an object known to be a
   client (an annotated parameter or attribute, a function annotated to return one, an API
   class's constructor); a raw `call_api`; the dynamic or stream client; exec/attach/proxy;
   a generic custom-object call whose group or plural is not a constant.
3. kopf: a resource handler (kopf.timer/daemon/index/on.create|update|delete|resume|field)
   lists, watches and patches its resource (kopf adds a finalizer and stores its state in
   annotations); kopf.on.event only lists and watches. Writing `patch.status` (or returning a
   value from a resource handler) patches the status subresource when the CRD has one.
   kopf.event/info/warn/exception create Events. Framework needs: runtime observation of CRDs
   (list/watch customresourcedefinitions) and, when serving named namespaces, of namespaces
   (list/watch namespaces), unless the code disables `settings.scanning`; peering unless
   standalone. Any other lowercase kopf function is an error until it is classified here.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import re
import sys
import textwrap
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = (REPO / "contract", REPO / "worker", REPO / "operator")
CRD_FILE = REPO / "crds" / "ingestionrollouts.yaml"
# The chart's pre-delete hook: a script of its own, run by a Job (not a console script).
UNINSTALL_HOOK = REPO / "helm" / "apex-ingestion-rollout" / "files" / "uninstall_rollouts.py"

# Which console script runs which process.
PROCESSES = {"operator": "ingestion-operator", "api": "ingestion-api", "worker": "ingestion-worker"}

_CLIENT_VERB_NAME = re.compile(
    r"^(list|read|create|patch|replace|delete|connect|watch)_\w+$|^\w+_with_http_info$"
)
_RAW_CLIENT = {"call_api", "param_serialize", "response_deserialize", "DynamicClient"}
_RAW_MODULES = ("kubernetes.dynamic", "kubernetes.stream")
_HTTP_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}

KOPF_RESOURCE_HANDLERS = {"timer", "daemon", "index", "create", "update", "delete", "resume",
                          "field", "event"}  # fmt: skip
KOPF_NON_RESOURCE = {"startup", "cleanup", "login", "probe"}
KOPF_EVENTS = {"event", "info", "warn", "exception"}
# No Kubernetes access: object helpers, logging set-up, and the login helpers (they only
# read credentials from a kubeconfig or the Pod's service account).
KOPF_PURE = {"adopt", "label", "harmonize_naming", "append_owner_reference",
             "remove_owner_reference", "build_object_reference", "build_owner_reference",
             "configure", "login_via_client", "login_with_kubeconfig",
             "login_with_service_account"}  # fmt: skip


class UncheckableCall(Exception):
    """Code whose Kubernetes access cannot be derived: extend this module or the code."""


@dataclasses.dataclass(frozen=True, order=True)
class Permission:
    """One RBAC grant: scope is "namespace" (namespaced resource) or "cluster"."""

    scope: str
    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        group = self.group or "core"
        return f"{self.verb} {self.resource} ({group}, {self.scope}-scoped)"


@dataclasses.dataclass(frozen=True)
class Use:
    permission: Permission
    origin: str  # "path:line: what"
    modes: frozenset[str] = frozenset({"singleNamespace", "allNamespaces"})
    # A client call passing field_selector= (RBAC's resourceNames cover a list or watch
    # only when it selects metadata.name; the API server checks the value, we check that
    # there is one).
    field_selector: bool = False


# --------------------------------------------------------------------------- modules


@functools.cache
def module_files() -> dict[str, Path]:
    """Every project module: dotted name -> file (read-only: cached for the whole scan)."""
    modules: dict[str, Path] = {}
    for root in SOURCE_ROOTS:
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def entry_module(process: str) -> str:
    """The module of a process's console script (pyproject [project.scripts])."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    return str(scripts[PROCESSES[process]]).split(":")[0]


def _imports(name: str, tree: ast.Module, modules: dict[str, Path]) -> Iterator[str]:
    package = name if modules[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def closure(entry: str) -> list[str]:
    """The project modules `entry` imports, transitively (packages' __init__ included)."""
    modules = module_files()
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        todo += [m for m in _imports(name, _parse(modules[name]), modules) if m in modules]
    return sorted(seen)


@functools.cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


# --------------------------------------------------------------------------- kubernetes client


@functools.cache
def _client_api_dir() -> Path:
    spec = importlib.util.find_spec("kubernetes")
    if spec is None or not spec.submodule_search_locations:
        raise UncheckableCall("the kubernetes client is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "client" / "api"


@functools.cache
def _client_source(path: Path) -> str:
    return path.read_text()


@functools.cache
def client_methods() -> dict[str, Path]:
    """Every public method of the kubernetes client's generated *Api classes -> its file.

    Read as text: importing the API classes would import all ~900 models (seconds)."""
    methods: dict[str, Path] = {}
    for path in sorted(_client_api_dir().glob("*_api.py")):
        for match in re.finditer(r"^    def ([a-z]\w*)\(", _client_source(path), re.MULTILINE):
            methods.setdefault(match.group(1), path)
    return methods


@functools.cache
def client_members() -> frozenset[str]:
    """Methods and attributes (api_client) of the API classes: what may follow a client."""
    attributes: set[str] = set()
    assignment = re.compile(r"^        self\.(\w+) = ", re.MULTILINE)
    for path in _client_api_dir().glob("*_api.py"):
        attributes |= set(assignment.findall(_client_source(path)))
    return frozenset(client_methods()) | attributes


def _method_block(path: Path, name: str) -> str | None:
    """The source of method `name` in a generated API file (up to the next method)."""
    source = _client_source(path)
    start = source.find(f"\n    def {name}(")
    if start < 0:
        return None
    end = re.compile(r"\n    (?:def |@)").search(source, start + 1)
    return source[start : end.start() if end else None]


def _base_method(method: str) -> str:
    for suffix in ("_with_http_info", "_without_preload_content"):
        method = method.removesuffix(suffix)
    return method


def client_endpoint(method: str) -> tuple[str, str]:
    """(HTTP method, path template) of a client method, read from the client's source."""
    path, base = client_methods()[method], _base_method(method)
    for name in (f"_{base}_serialize", f"{base}_with_http_info"):
        body = _method_block(path, name)
        if body is None:
            continue
        new = re.search(r"method='([A-Z]+)',\s*resource_path='([^']+)'", body)
        if new:
            return new.group(1), new.group(2)
        old = re.search(r"call_api\(\s*'([^']+)',\s*'([A-Z]+)'", body)
        if old:
            return old.group(2), old.group(1)
    raise UncheckableCall(f"cannot find the HTTP endpoint of kubernetes client method {method}")


def client_parameters(method: str) -> list[str]:
    """The method's parameter names in order (without self), from its definition."""
    body = _method_block(client_methods()[method], method)
    if body is None:
        return []
    header = textwrap.dedent(body.strip("\n").split('"""', 1)[0]).rstrip() + "\n    pass\n"
    try:
        fn = ast.parse(header).body[0]
    except SyntaxError:
        return []
    assert isinstance(fn, ast.FunctionDef)
    return [a.arg for a in [*fn.args.posonlyargs, *fn.args.args] if a.arg != "self"]


def endpoint_permission(
    http: str, path: str, watch: bool, params: dict[str, str | None]
) -> Permission | None:
    """The RBAC permission an API request needs; None for discovery (non-resource URLs)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[:1] == ["watch"]:
        watch, rest = True, rest[1:]
    scope = "cluster"
    if rest[:2] == ["namespaces", "{namespace}"] and len(rest) > 2:
        scope, rest = "namespace", rest[2:]
    if not rest:
        return None  # discovery: /api/v1, /apis/group/version
    rest = [_fill(segment, params, path) for segment in rest]
    group = _fill(group, params, path)
    if scope == "cluster" and len(rest) == 1 and _namespaced_crd(group, rest[0]):
        scope = "namespace"  # a namespaced resource in every namespace: a ClusterRole's rule
    resource, named = rest[0], len(rest) > 1
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    if http == "GET":
        verb = "get" if named else ("watch" if watch else "list")
    elif http == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = _HTTP_VERBS[http]
    return Permission(scope, group, resource, verb)


def _fill(segment: str, params: dict[str, str | None], path: str) -> str:
    if not (segment.startswith("{") and segment.endswith("}")) or segment == "{name}":
        return segment
    value = params.get(segment[1:-1])
    if value is None:
        raise UncheckableCall(f"{path}: {segment} is not a constant in the call")
    return value


# --------------------------------------------------------------------------- the scan


@dataclasses.dataclass
class _Scan:
    uses: list[Use] = dataclasses.field(default_factory=list)
    handler_resources: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    status_written: list[str] = dataclasses.field(default_factory=list)
    scanning_disabled: bool = False
    standalone: bool = False
    kopf_run: list[ast.Call] = dataclasses.field(default_factory=list)


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"


def _constants(tree: ast.Module, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Module-level NAME = "x", NAME: T = "x" and A, B = "x", "y" constants, and those
    imported by name from project modules (`from ingestion_contract.crd import GROUP`)."""
    found: dict[str, Any] = {}
    modules = module_files()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and not node.level and node.module in modules:
            if node.module in seen:
                continue
            source = _constants(_parse(modules[node.module]), seen | {node.module})
            for alias in node.names:
                if alias.name in source:
                    found[alias.asname or alias.name] = source[alias.name]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(node.value, ast.Constant):
                found[node.target.id] = node.value.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
            if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
                found[target.id] = value.value
            elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                for t, v in zip(target.elts, value.elts, strict=False):
                    if isinstance(t, ast.Name) and isinstance(v, ast.Constant):
                        found[t.id] = v.value
    return found


def _value(node: ast.AST | None, constants: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return "?"


def _client_call(
    scan: _Scan, path: Path, node: ast.Attribute, call: ast.Call | None, watched: bool,
    constants: dict[str, Any],
) -> None:  # fmt: skip
    method = node.attr
    if method.startswith("connect_"):
        raise UncheckableCall(f"{_where(path, node)}: {method} (exec/attach/proxy): classify it")
    http, template = client_endpoint(method)
    params: dict[str, str | None] = {}
    if call is not None:
        names = client_parameters(method)
        params = {n: _value(a, constants) for n, a in zip(names, call.args, strict=False)}
        params |= {k.arg: _value(k.value, constants) for k in call.keywords if k.arg}
    watch = watched or params.get("watch") is True
    try:
        permission = endpoint_permission(http, template, watch, params)
    except UncheckableCall as exc:
        raise UncheckableCall(f"{_where(path, node)}: {method}: {exc}") from None
    if permission is not None:
        selects = call is not None and any(k.arg == "field_selector" for k in call.keywords)
        origin = f"{_where(path, node)}: {method}"
        scan.uses.append(Use(permission, origin, field_selector=selects))


def _scan_kubernetes(scan: _Scan, path: Path, tree: ast.Module) -> None:
    constants = _constants(tree)
    typed = _client_typed(tree)
    known = client_methods()
    calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    streamed = {
        id(arg)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "stream"
        for arg in n.args[:1]
    }
    for node in ast.walk(tree):
        if _raw_client(node):
            raise UncheckableCall(f"{_where(path, node)}: raw or dynamic Kubernetes client use")
        if not isinstance(node, ast.Attribute) or node.attr.startswith("_"):
            continue
        on_client = _is_typed(node.value, typed)
        if node.attr in known and _CLIENT_VERB_NAME.match(node.attr):
            _client_call(scan, path, node, calls.get(id(node)), id(node) in streamed, constants)
        elif on_client and node.attr not in client_members():
            raise UncheckableCall(
                f"{_where(path, node)}: {node.attr} is not a kubernetes client method "
                "(typo, or renamed in this client version?)"
            )


def _raw_client(node: ast.AST) -> bool:
    """call_api & co., and the dynamic/stream clients, whose requests cannot be mapped."""
    if isinstance(node, ast.Attribute):
        return node.attr in _RAW_CLIENT
    if isinstance(node, ast.Name):
        return node.id in _RAW_CLIENT
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").startswith(_RAW_MODULES)
    if isinstance(node, ast.Import):
        return any(alias.name.startswith(_RAW_MODULES) for alias in node.names)
    return False


@functools.cache
def client_classes() -> frozenset[str]:
    """The kubernetes client's API class names (CoreV1Api, AppsV1Api, ...)."""
    names: set[str] = set()
    for path in _client_api_dir().glob("*_api.py"):
        names |= set(re.findall(r"^class (\w+Api)\b", _client_source(path), re.MULTILINE))
    return frozenset(names)


def _is_client_type(annotation: ast.AST | None) -> bool:
    """An annotation naming a kubernetes API class (kubernetes.client.CoreV1Api | None...)."""
    if annotation is None:
        return False
    return any(
        (isinstance(n, ast.Name) and n.id in client_classes())
        or (isinstance(n, ast.Attribute) and n.attr in client_classes())
        for n in ast.walk(annotation)
    )


def _client_typed(tree: ast.Module) -> set[str]:
    """Names holding a kubernetes API object in this module: annotated parameters and
    attributes, functions returning one ("name()"), names assigned from one of those or
    from an API class's constructor. On these, an unknown method is an error."""
    typed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if _is_client_type(node.returns):
                typed.add(node.name + "()")
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                if _is_client_type(arg.annotation):
                    typed.add(arg.arg)
        elif isinstance(node, ast.AnnAssign) and _is_client_type(node.annotation):
            typed.add(_dotted(node.target).split(".")[-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_typed(node.value, typed):
            for target in node.targets:
                typed.add(_dotted(target).split(".")[-1])
    return typed


def _is_typed(receiver: ast.AST, typed: set[str]) -> bool:
    if isinstance(receiver, ast.Call):
        callee = _dotted(receiver.func).split(".")[-1]
        return callee in client_classes() or f"{callee}()" in typed
    if isinstance(receiver, ast.Name | ast.Attribute):
        return _dotted(receiver).split(".")[-1] in typed
    return False


def _kopf_name(node: ast.AST) -> str | None:
    """'timer' for kopf.timer, 'on.create' for kopf.on.create, else None."""
    dotted = _dotted(node)
    return dotted.removeprefix("kopf.") if dotted.startswith("kopf.") else None


def _scan_kopf(scan: _Scan, path: Path, tree: ast.Module) -> None:
    constants = _constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kopf._"):
            raise UncheckableCall(f"{_where(path, node)}: kopf internals ({node.module})")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            _scan_handler(scan, path, node, constants)
            _scan_patch_writes(scan, path, node)
        if isinstance(node, ast.Call):
            name = _kopf_name(node.func)
            if name == "run":
                scan.kopf_run.append(node)
                for keyword in node.keywords:
                    if keyword.arg == "standalone" and _value(keyword.value, constants) is True:
                        scan.standalone = True
            elif name in KOPF_EVENTS:
                permission = Permission("namespace", "", "events", "create")
                scan.uses.append(Use(permission, f"{_where(path, node)}: kopf.{name}"))
        if isinstance(node, ast.Assign) and _is_setting(node, "scanning", "disabled"):
            scan.scanning_disabled = _value(node.value, constants) is True
        if isinstance(node, ast.Assign) and _is_setting(node, "peering", "standalone"):
            scan.standalone = scan.standalone or _value(node.value, constants) is True
        if isinstance(node, ast.Attribute):
            name = _kopf_name(node)
            if name and "." not in name and name[:1].islower():
                known = KOPF_RESOURCE_HANDLERS | KOPF_EVENTS | KOPF_PURE | {"run", "on"}
                if name not in known:
                    raise UncheckableCall(f"{_where(path, node)}: unclassified kopf.{name}")


def _is_setting(node: ast.Assign, section: str, field: str) -> bool:
    return any(
        isinstance(t, ast.Attribute)
        and t.attr == field
        and isinstance(t.value, ast.Attribute)
        and t.value.attr == section
        for t in node.targets
    )


def _scan_handler(
    scan: _Scan, path: Path, fn: ast.FunctionDef | ast.AsyncFunctionDef, constants: dict[str, Any]
) -> None:
    for decorator in fn.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        name = _kopf_name(decorator.func)
        if name is None:
            continue
        kind = name.removeprefix("on.")
        if kind in KOPF_NON_RESOURCE:
            continue
        if kind not in KOPF_RESOURCE_HANDLERS:
            raise UncheckableCall(f"{_where(path, fn)}: unclassified handler kopf.{name}")
        args = [_value(a, constants) for a in decorator.args]
        keywords = {k.arg: _value(k.value, constants) for k in decorator.keywords if k.arg}
        group, _version, plural = _handler_resource(args, keywords)
        if plural is None:
            raise UncheckableCall(f"{_where(path, fn)}: kopf.{name} on a non-constant resource")
        scope = "namespace" if _namespaced(group, plural) else "cluster"
        where = f"{_where(path, fn)}: kopf.{name} {fn.name}"
        verbs = ["list", "watch"] if kind == "event" else ["list", "watch", "patch"]
        for verb in verbs:
            scan.uses.append(Use(Permission(scope, group, plural, verb), where))
        if kind != "event":  # kopf patches these: progress, finalizers, handler results
            scan.handler_resources.append((group, plural, where))
        if kind != "event" and _returns_value(fn):
            scan.status_written.append(f"{where} returns a value (kopf stores it in status)")


def _handler_resource(
    args: list[Any], keywords: dict[str, Any]
) -> tuple[str, str | None, str | None]:
    if len(args) >= 3:
        group, version, plural = args[:3]
    elif len(args) == 2:
        (group, version), plural = str(args[0]).split("/", 1), args[1]
    elif len(args) == 1:
        group, version, plural = "", None, args[0]
    else:
        group, version, plural = "", None, None
    group = keywords.get("group", group) or ""
    plural = keywords.get("plural", plural)
    return str(group), version, plural


def _returns_value(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        isinstance(n, ast.Return)
        and n.value is not None
        and not (isinstance(n.value, ast.Constant) and n.value.value is None)
        for n in ast.walk(fn)
    )


def _scan_patch_writes(scan: _Scan, path: Path, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """`patch.status` on a parameter annotated kopf.Patch."""
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    patches = {
        a.arg for a in args if a.annotation is not None and _dotted(a.annotation) == "kopf.Patch"
    }
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "status"
            and isinstance(node.value, ast.Name)
            and node.value.id in patches
        ):
            scan.status_written.append(f"{_where(path, node)}: {node.value.id}.status")


# --------------------------------------------------------------------------- the CRD


@functools.cache
def _crds() -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.safe_load_all(CRD_FILE.read_text()) if d)


def _namespaced(group: str, plural: str) -> bool:
    for crd in _crds():
        spec = crd["spec"]
        if spec["group"] == group and spec["names"]["plural"] == plural:
            return bool(spec["scope"] == "Namespaced")
    if group == "":
        return plural not in {"namespaces", "nodes", "persistentvolumes"}
    raise UncheckableCall(f"unknown resource {plural}.{group}: add its scope here")


def _namespaced_crd(group: str, plural: str) -> bool:
    return any(
        crd["spec"]["group"] == group
        and crd["spec"]["names"]["plural"] == plural
        and crd["spec"]["scope"] == "Namespaced"
        for crd in _crds()
    )


def _has_status_subresource(group: str, plural: str) -> bool:
    for crd in _crds():
        spec = crd["spec"]
        if spec["group"] == group and spec["names"]["plural"] == plural:
            return any("status" in (v.get("subresources") or {}) for v in spec["versions"])
    return False


# --------------------------------------------------------------------------- results


def uses(process: str) -> list[Use]:
    """Every Kubernetes permission `process` needs, with where in the code it comes from."""
    modules = module_files()
    return _uses([(modules[n], _parse(modules[n])) for n in closure(entry_module(process))])


def uses_in_source(source: str) -> list[Use]:
    """The same derivation for one piece of code (for testing the derivation itself)."""
    return _uses([(REPO / "snippet.py", ast.parse(source))])


def uses_in_file(path: Path) -> list[Use]:
    """The same derivation for a script run on its own (the chart's uninstall hook)."""
    return _uses([(path, _parse(path))])


def _uses(trees: list[tuple[Path, ast.Module]]) -> list[Use]:
    scan = _Scan()
    for path, tree in trees:
        _scan_kubernetes(scan, path, tree)
        _scan_kopf(scan, path, tree)
    result = list(scan.uses)
    if scan.status_written:
        for group, plural, where in scan.handler_resources:
            resource = f"{plural}/status" if _has_status_subresource(group, plural) else plural
            scope = "namespace" if _namespaced(group, plural) else "cluster"
            origin = f"{where}; status written at {scan.status_written[0]}"
            result.append(Use(Permission(scope, group, resource, "patch"), origin))
    if scan.kopf_run:
        result += _kopf_framework(scan)
    return result


def _kopf_framework(scan: _Scan) -> list[Use]:
    """What kopf itself asks for (see kopf/_core/reactor/observation.py)."""
    where = "kopf framework"
    needs: list[Use] = []
    if not scan.standalone:
        raise UncheckableCall("kopf peering (not standalone) needs kopfpeerings: classify it here")
    if scan.scanning_disabled:
        return needs
    for verb in ("list", "watch"):
        crds = Permission("cluster", "apiextensions.k8s.io", "customresourcedefinitions", verb)
        needs.append(Use(crds, f"{where}: CRD observation (resource_observer)"))
        namespaces = Permission("cluster", "", "namespaces", verb)
        origin = f"{where}: namespace observation for named namespaces (namespace_observer)"
        needs.append(Use(namespaces, origin, frozenset({"singleNamespace"})))
    return needs


def permissions(items: Iterable[Use], mode: str) -> dict[Permission, list[str]]:
    """Permission -> origins, for one operator mode (singleNamespace or allNamespaces)."""
    found: dict[Permission, list[str]] = {}
    for use in items:
        if mode in use.modes:
            found.setdefault(use.permission, []).append(use.origin)
    return found


def main(argv: list[str]) -> int:
    process = argv[1] if len(argv) > 1 else "operator"
    found = uses_in_file(UNINSTALL_HOOK) if process == "uninstall" else uses(process)
    for mode in ("singleNamespace", "allNamespaces"):
        print(f"{process} ({mode}):")
        for permission, origins in sorted(permissions(found, mode).items()):
            print(f"  {permission}")
            for origin in origins:
                print(f"      {origin}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

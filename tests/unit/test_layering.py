"""Imports point one way, down, and form no circle. This test walks every module of the project's packages
(function-local imports included) and fails on an import that goes up a layer, or on any import cycle.

Layers, bottom to top (a package may import only those listed for it):

    schemas      where a message is defined                      -> nothing of ours
    core         settings, Kafka clients, serdes, logs, topics   -> schemas
    release      the release decision (pure)                     -> core, schemas
    producers    publishing                                      -> core, schemas
    operations   lag monitor                                     -> core, schemas
    consumers    forwarder, officers' feed                       -> release, core, schemas
    deploy       servers, topics, ACLs, schema registration      -> release, core, schemas
    console      the web console: officers, components, operations -> consumers, operations, release, core, schemas
    liaison      composition root: CLI and demo                  -> everything

Inside ``consumers``: ``consumers.shell`` (records, codec, faults, transaction, health, supervision) imports no
service; each service (forwarder, ingress, deconfliction, officers) imports the shell and none of the others,
but for :data:`SIBLINGS` (the ingress guard compiles the partners' policies with the forwarder's plans).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from core import REPO_ROOT

ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "core": {"schemas"},
    "release": {"core", "schemas"},
    "producers": {"core", "schemas"},
    "operations": {"core", "schemas"},
    "consumers": {"release", "operations", "core", "schemas"},  # operations: the ledger's pauses (forwarder)
    "deploy": {"release", "core", "schemas"},
    "console": {"consumers", "operations", "release", "core", "schemas"},  # consumers: the feed's key fields
    "liaison": {"console", "deploy", "consumers", "operations", "producers", "release", "core", "schemas"},
}
PACKAGES = tuple(ALLOWED)
#: consumer service -> the other services' modules it may import
SIBLINGS: dict[str, set[str]] = {"ingress": {"consumers.forwarder.plans"}}


def _modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every .py file of the project's packages under ``root``."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that module ``name`` imports (resolving ``from pkg import submodule``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            while t and t not in known:  # `import a.b.c` of a non-module attribute: nearest known module
                t = t.rpartition(".")[0]
            if t and t.split(".")[0] in ALLOWED:
                found.add(t)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    mods = _modules(root)
    known = set(mods)
    return {name: _imports(name, path, known) - {name} for name, path in mods.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(g.items()):
        top = mod.split(".")[0]
        for dep in sorted(deps):
            other = dep.split(".")[0]
            if other != top and other not in ALLOWED[top]:
                bad.append(f"{mod} imports {dep} ({top} may import only {', '.join(sorted(ALLOWED[top])) or 'nothing of ours'})")
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(g):
        if start in index:
            continue
        work = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            for dep in it:
                if dep not in g:
                    continue
                if dep not in index:
                    index[dep] = low[dep] = counter
                    counter += 1
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(sorted(g[dep]))))
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_every_package_is_in_a_layer():
    tops = {p.name for p in REPO_ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests"}
    assert tops == set(ALLOWED), f"top-level packages without a layer: {tops ^ set(ALLOWED)}"


def test_imports_point_down():
    g = graph(REPO_ROOT)
    assert len(g) > 50  # the walk found the project, not an empty folder
    assert upward_imports(g) == []


def sideways_imports(g: dict[str, set[str]]) -> list[str]:
    """Imports between the consumer services, and from the shell into any of them."""
    bad = []
    for mod, deps in sorted(g.items()):
        parts = mod.split(".")
        if parts[0] != "consumers" or len(parts) < 2:
            continue
        for dep in sorted(deps):
            d = dep.split(".")
            if d[0] != "consumers" or len(d) < 2 or d[1] in (parts[1], "shell"):
                continue
            if parts[1] == "shell":
                bad.append(f"{mod} imports {dep} (the shell imports no consumer service)")
            elif dep not in SIBLINGS.get(parts[1], set()):
                bad.append(f"{mod} imports {dep} (a consumer service imports only consumers.shell)")
    return bad


def test_consumer_services_import_the_shell_not_each_other():
    g = graph(REPO_ROOT)
    assert any(m.startswith("consumers.shell.") for m in g)
    assert sideways_imports(g) == []


def test_no_import_cycle():
    assert cycles(graph(REPO_ROOT)) == []


@pytest.fixture
def tree_copy(tmp_path):
    for pkg in PACKAGES:
        shutil.copytree(REPO_ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.yaml",
                                                                                      "*.avsc", "maven", "kafka"))
    return tmp_path


def test_an_upward_import_in_a_temporary_module_fails(tree_copy):
    (tree_copy / "core" / "_upward.py").write_text("def f():\n    from consumers.forwarder import service\n")
    (tree_copy / "release" / "_upward.py").write_text("from deploy.infra import servers\n")
    assert upward_imports(graph(tree_copy)) == [
        "core._upward imports consumers.forwarder.service (core may import only schemas)",
        "release._upward imports deploy.infra.servers (release may import only core, schemas)",
    ]


def test_a_sideways_import_in_a_temporary_module_fails(tree_copy):
    (tree_copy / "consumers" / "shell" / "_up.py").write_text("from consumers.forwarder import pipeline\n")
    (tree_copy / "consumers" / "deconfliction" / "_side.py").write_text("import consumers.ingress.checks\n")
    assert sideways_imports(graph(tree_copy)) == [
        "consumers.deconfliction._side imports consumers.ingress.checks (a consumer service imports only "
        "consumers.shell)",
        "consumers.shell._up imports consumers.forwarder.pipeline (the shell imports no consumer service)",
    ]


def test_a_cycle_in_temporary_modules_fails(tree_copy):
    (tree_copy / "core" / "_a.py").write_text("from core import _b\n")
    (tree_copy / "core" / "_b.py").write_text("import core._a\n")
    assert cycles(graph(tree_copy)) == [["core._a", "core._b"]]

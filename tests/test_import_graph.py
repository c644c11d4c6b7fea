"""tl_kit's internal imports form a graph without cycles, and every module imports.

The graph is read from the source with :mod:`ast`: every ``import`` / ``from ... import``
statement of a tl_kit module, at module level or inside a function, that names a tl_kit
module is an edge (statements under ``if TYPE_CHECKING:`` never run and are left out;
``importlib.import_module("tl_kit....")`` with a literal name counts too). A package is
the node of its ``__init__.py``: the names it re-exports are its edges.
``from tl_kit.models import resnet`` is an edge to the submodule ``tl_kit.models.resnet``;
``from tl_kit.models import build_model`` an edge to the package ``tl_kit.models``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from _paths import ROOT

PACKAGE = "tl_kit"


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """``{module name: source file}`` for every module of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Imports(ast.NodeVisitor):
    """Collects the absolute names a module imports (``(module, names)`` pairs)."""

    def __init__(self, module: str, is_package: bool):
        self.base = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, tuple[str, ...]]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(alias.name, ()) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.base.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        self.found.append((module, tuple(alias.name for alias in node.names)))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (name == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            self.found.append((node.args[0].value, ()))
        self.generic_visit(node)


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (None: not ours)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the package's own modules."""
    modules = module_files() if modules is None else modules
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        edges = set()
        for target, names in visitor.found:
            if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            rest = len(subs) < len(names) or not names
            edges.update(subs)
            if rest and (known := _known(target, modules)) is not None:
                edges.add(known)
        edges.discard(module)
        graph[module] = edges
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The components with more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(components)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles (``[a, b, ..., a]``) that together pass through every module on a cycle.

    For each strongly connected component: a shortest cycle through its first module not
    yet on a reported cycle, until every member is covered.
    """
    cycles = []
    for component in strongly_connected(graph):
        covered: set[str] = set()
        for start in component:
            if start not in covered:
                cycle = _cycle_through(graph, set(component), start)
                covered.update(cycle)
                cycles.append(cycle)
    return cycles


def _cycle_through(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """A shortest cycle through ``start`` inside one component (breadth-first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(members)}")


def test_find_cycles_reports_each_cycle_as_a_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"b"}}  # one component, two cycles
    assert find_cycles(graph) == [["a", "b", "a"], ["c", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_reads_function_level_relative_and_package_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from tl_kit.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from .b import g\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tl_kit.a\n"
        "def g():\n    import importlib\n    importlib.import_module('tl_kit.a')\n")
    (pkg / "c.py").write_text("from tl_kit.sub import g\nimport tl_kit.a\n")
    graph = import_graph(module_files(tmp_path))
    assert graph == {"tl_kit": set(), "tl_kit.a": {"tl_kit.sub.b"}, "tl_kit.sub": {"tl_kit.sub.b"},
                     "tl_kit.sub.b": {"tl_kit.a"}, "tl_kit.c": {"tl_kit.sub", "tl_kit.a"}}
    assert find_cycles(graph) == [["tl_kit.a", "tl_kit.sub.b", "tl_kit.a"]]


@pytest.mark.parametrize("module", sorted(module_files()))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_tl_kit_imports_have_no_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles between tl_kit modules:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles)

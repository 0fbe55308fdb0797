"""No import circle between cotforge's modules, counting imports inside functions and under TYPE_CHECKING.

A circle means two modules each need the other: the shared piece belongs in a leaf module both import.
A ``"package.module:attribute"`` string (how the pipeline names a stage's edge and config, loaded later by
name) counts as an import too: loading by name hides a dependency, it does not remove it. Importing a submodule
also runs its package's ``__init__``; that implicit edge is not counted (every package that re-exports its
submodules would otherwise be a circle), only the imports written in the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import cotforge

pytestmark = pytest.mark.unit


def module_files(root: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file under the package folder ``root``."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ``modules`` (``a.b.func`` → ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Which modules each module imports (anywhere in its body), restricted to the package's own modules."""
    modules = module_files(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                by_name = re.fullmatch(r"([A-Za-z_][\w.]*):\w+", node.value)
                targets = [by_name.group(1)] if by_name and by_name.group(1) in modules else []
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                # `from pkg import sub` imports the submodule `pkg.sub`; `from mod import name` imports `mod`.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                known = _known(target, modules)
                if known is not None and known != module:
                    graph[module].add(known)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle (``[a, b, …, a]``) per strongly connected group of modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_circle_in(group, graph) for group in groups)


def _circle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A concrete path from the group's first module back to itself, staying inside the group."""
    start = min(group)
    paths: list[list[str]] = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph[path[-1]] & group):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    raise AssertionError(f"no circle through {start} in {sorted(group)}")


def test_cotforge_has_no_import_cycles() -> None:
    root = Path(cotforge.__file__).parent
    graph = import_graph(root)
    assert len(graph) > 50, "the walk found too few modules to be looking at cotforge"
    cycles = find_cycles(graph)
    assert not cycles, (
        "import circles (move the shared piece into a leaf module both sides import):\n"
        + "\n".join(" -> ".join(c) for c in cycles)
    )


def test_walker_finds_function_level_and_type_checking_circles(tmp_path: Path) -> None:
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from demo.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from demo.c import thing\n    return thing\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo import a\nthing = 1\n"
    )
    (pkg / "d.py").write_text("from . import a\nfrom .sub.b import f\n")  # relative, into the circle only
    (pkg / "e.py").write_text('EDGE = "demo.f:run"\n')  # loaded by name later
    (pkg / "f.py").write_text("from demo import e\ndef run():\n    return e\n")
    graph = import_graph(pkg)
    assert graph["demo.d"] == {"demo.a", "demo.sub.b"}
    assert graph["demo.e"] == {"demo.f"}
    assert find_cycles(graph) == [
        ["demo.a", "demo.sub.b", "demo.c", "demo.a"],
        ["demo.e", "demo.f", "demo.e"],
    ]


def test_walker_sees_no_circle_in_a_chain(tmp_path: Path) -> None:
    pkg = tmp_path / "chain"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from chain.a import x\n")  # a package re-exporting its submodule
    (pkg / "a.py").write_text("from chain.b import y\nx = y\n")
    (pkg / "b.py").write_text("y = 1\n")
    assert find_cycles(import_graph(pkg)) == []

"""No import circle between cotforge's modules, nor between its packages, counting every kind of import.

A circle means two modules each need the other: the shared piece belongs in a leaf module both import. Between
packages (``cotforge.runfolder``, ``cotforge.pairs``, … and each top-level module) layers must point one way:
the runner and the CLI above the stages, the run folder and the record types below them.
A ``"package.module:attribute"`` string (how the pipeline names a stage's edge and config, loaded later by
name) counts as an import too: loading by name hides a dependency, it does not remove it. Importing a submodule
also runs its package's ``__init__``; that implicit edge is not counted (every package that re-exports its
submodules would otherwise be a circle), only the imports written in the code.
"""

from __future__ import annotations

import ast
import itertools
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


def package_of(module: str) -> str:
    """``cotforge.pairs.build`` → ``cotforge.pairs``; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """Packages and which import other packages, with one module-level import behind each package edge."""
    packages: dict[str, set[str]] = {package_of(m): set() for m in graph}
    witness: dict[tuple[str, str], str] = {}
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = package_of(module), package_of(target)
            if a != b:
                packages[a].add(b)
                witness.setdefault((a, b), f"{module} imports {target}")
    return packages, witness


def test_cotforge_packages_have_no_import_cycles() -> None:
    graph = import_graph(Path(cotforge.__file__).parent)
    packages, witness = package_graph(graph)
    packages.pop("cotforge", None)  # the root's __init__/__main__ sit above everything
    for targets in packages.values():
        targets.discard("cotforge")
    cycles = find_cycles(packages)
    described = [
        " -> ".join(c) + "\n    " + "\n    ".join(witness[(a, b)] for a, b in itertools.pairwise(c))
        for c in cycles
    ]
    assert not cycles, "package circles (each edge with one import that makes it):\n" + "\n".join(described)


def test_the_package_check_names_the_edge_that_closes_a_circle(tmp_path: Path) -> None:
    pkg = tmp_path / "demo"
    for sub in ("low", "high"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "runner.py").write_text("from demo.low import stage\n")
    (pkg / "low" / "stage.py").write_text("def f():\n    from demo.high.runner import x\n")
    (pkg / "low" / "leaf.py").write_text("X = 1\n")
    packages, witness = package_graph(import_graph(pkg))
    assert find_cycles({k: v for k, v in packages.items() if k != "demo"}) == [
        ["demo.high", "demo.low", "demo.high"]
    ]
    assert witness[("demo.low", "demo.high")] == "demo.low.stage imports demo.high.runner"


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

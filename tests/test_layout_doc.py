"""docs/DEVELOPING.md's layout table names every top-level module and package of cotforge/, and only those."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def table_paths(doc: str) -> dict[str, str]:
    """``{path named in the first column: its row}`` of the layout table (``a.py` + `b.py`` names both)."""
    section = doc.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths: dict[str, str] = {}
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first = row.split("|")[1]
        for name in re.findall(r"`([^`]+)`", first):
            paths[name if name.startswith("cotforge/") else f"cotforge/{name}"] = row
    return paths


def test_layout_table_matches_the_tree() -> None:
    named = table_paths((ROOT / "docs" / "DEVELOPING.md").read_text(encoding="utf-8"))
    package = ROOT / "cotforge"
    tree = {
        f"cotforge/{p.name}/" if p.is_dir() else f"cotforge/{p.name}"
        for p in package.iterdir()
        if (p.is_dir() and any(p.glob("*.py"))) or (p.suffix == ".py" and not p.name.startswith("__"))
    }
    undocumented = sorted(tree - set(named))
    assert not undocumented, f"add a row to docs/DEVELOPING.md's layout table for: {undocumented}"
    # A row may announce a package another change is adding; every other row must name something that exists.
    stale = sorted(p for p, row in named.items() if p not in tree and "(being added)" not in row)
    assert not stale, f"docs/DEVELOPING.md's layout table names what the tree lacks: {stale}"

"""Every `cotforge …` command a message, a log line or a help text suggests exists, with the flags it names.

The suggestions are found in the code itself: each string (and each literal part of an f-string) in the
package is searched for a command in backticks, or for a command followed by a flag.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from cotforge.cli import app

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "cotforge"
# `cotforge ingest --run R` in backticks (up to the closing backtick or the f-string's next placeholder), or
# a bare `cotforge train sft --run` (a command followed by a flag).
SUGGESTION = re.compile(r"`cotforge ([^`]*)|\bcotforge ((?:[a-z][a-z0-9-]* )+--[a-z][^ ]*)")
WORD = re.compile(r"[a-z][a-z0-9-]*$")


def suggestions() -> list[tuple[str, str]]:
    """(``file:line``, the text after ``cotforge ``) of every suggestion in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for match in SUGGESTION.finditer(node.value):
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    found.append((where, (match.group(1) or match.group(2) or "").strip()))
    return found


def _options(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:  # a stage command's flags are made from its config here
        names.update(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    return names


def problem(suggested: str) -> str | None:
    """What is wrong with ``cotforge <suggested>``, or ``None``."""
    words = suggested.split()
    command: Any = typer.main.get_command(app)
    path = ["cotforge"]
    for position, word in enumerate(words):
        commands = getattr(command, "commands", None)
        if not WORD.match(word) or not commands:
            break
        if word not in commands:
            takes_arguments = any(p.param_type_name == "argument" for p in command.params)
            if position == 0 or not takes_arguments:
                return f"`{' '.join(path)}` has no command {word!r}"
            break
        command = commands[word]
        path.append(word)
    flags = [w.split("=")[0] for w in words if w.startswith("--")]
    unknown = [f for f in flags if f not in _options(command)] if flags else []
    if unknown:
        return f"`{' '.join(path)}` has no option {', '.join(unknown)}"
    return None


def test_the_search_finds_the_suggestions() -> None:
    found = {text for _, text in suggestions()}
    assert any(text.startswith("train sft --run") for text in found)
    assert any(text.startswith("schemas export") for text in found)
    assert problem("review auto --run R") is None and problem("train awdpo --aggregation mean") is None
    assert problem("review automatic") and problem("tran sft") and problem("ingest --no-such-flag")


def test_every_suggested_command_exists() -> None:
    wrong = [f"{where}: cotforge {text} — {why}" for where, text in suggestions() if (why := problem(text))]
    assert not wrong, "\n".join(wrong)

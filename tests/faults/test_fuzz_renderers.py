"""Fuzz the renderers with any text: a card value is one inert code span or escaped text under a real
CommonMark renderer, and a console line stays one plain line."""

from __future__ import annotations

import html
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from cotforge.cli.common import PlainConsole
from cotforge.release.markdown import MAX_VALUE_CHARS, code, text
from cotforge.safe_text import elided, visible

pytestmark = pytest.mark.unit
FUZZ = settings(max_examples=150, deadline=None)
# Any text, with the characters renderers care about drawn often.
HOSTILE_CHARS = st.sampled_from([*"`|*_[]()<>&!#~:@{}$\\\n\r\t\x1b\u202e\u2028\x00 -.w", "www.", "http://"])
VALUES = st.one_of(
    st.text(max_size=60), st.lists(HOSTILE_CHARS | st.text(max_size=3), max_size=30).map("".join)
)
RENDER = MarkdownIt("commonmark", {"html": True}).enable("table")


def _cell(markdown: str) -> str:
    rendered = RENDER.render(f"| a |\n|---|\n| {markdown} |\n")
    return rendered.split("<td>", 1)[1].split("</td>", 1)[0]


@FUZZ
@given(VALUES)
def test_a_code_span_in_a_table_cell_is_the_value_and_nothing_else(value: str) -> None:
    cell = _cell(code(value))
    if not value:
        assert cell == "(empty)"
        return
    assert cell.startswith("<code>") and cell.endswith("</code>") and cell.count("<code>") == 1
    assert html.unescape(cell[len("<code>") : -len("</code>")]).strip(" ") == elided(
        visible(value), MAX_VALUE_CHARS
    ).strip(" ")


@FUZZ
@given(VALUES)
def test_escaped_text_renders_as_the_value_without_tags(value: str) -> None:
    rendered = RENDER.render(f"x {text(value)} x").strip()
    assert rendered.startswith("<p>") and rendered.endswith("</p>") and rendered.count("<") == 2
    shown = html.unescape(rendered[len("<p>") : -len("</p>")])
    assert " ".join(shown.split()) == " ".join(f"x {elided(visible(value), MAX_VALUE_CHARS)} x".split())


@FUZZ
@given(VALUES)
def test_a_console_line_stays_one_plain_line(value: str) -> None:
    out = io.StringIO()
    PlainConsole(file=out, width=1_000, soft_wrap=True).print(f"value: {value}")
    lines = out.getvalue().split("\n")
    assert lines[1:] == [""] and lines[0].rstrip() == f"value: {visible(value)}".rstrip()

"""User values in Markdown (the dataset card, the changelog) as inert text. Pure.

A value is written as a code span (nothing in it is read as HTML, a link, emphasis or a heading), on one line
(control characters escaped), with ``|`` escaped so that it stays in its table cell. Markdown that cotforge
writes itself, with its values already escaped, is a :class:`Markdown` string and is written as it is.
:func:`card_environment` makes this the rule of the card's template: every ``{{ … }}`` that is not
:class:`Markdown` or a number is written as a code span.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import jinja2

from cotforge.safe_text import elided, visible

# A value longer than this (a 6,500-character source name) is shown cut, keeping its start and its end.
MAX_VALUE_CHARS = 300
_BACKTICKS = re.compile(r"`+")
# What can open an inline construct: emphasis, code, links and images, HTML and entities, autolinks (a scheme's
# colon, an e-mail's @), strikethrough, math ($ on the Hub), and a table cell's end.
_INLINE_SPECIAL = frozenset("\\`*_[]<>&|!#~():@{}$")
_WWW = re.compile(r"(?i)\bwww\.")


class Markdown(str):
    """Markdown written by cotforge, whose user values are already escaped: written into a card as it is."""


def code(value: object) -> Markdown:
    """``value`` as one inline code span, safe in a table cell (``|`` escaped); ``(empty)`` for ``""``."""
    text = elided(visible(value), MAX_VALUE_CHARS).replace("|", "\\|")
    if not text:
        return Markdown("(empty)")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    # A span that starts or ends with a backtick (or a space) needs a space inside each fence.
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


def text(value: object) -> Markdown:
    """``value`` as plain Markdown text on one line: each character that could open a link, autolink,
    emphasis, HTML tag, entity or math backslash-escaped (``www.`` too), so it reads as written."""
    shown = elided(visible(value), MAX_VALUE_CHARS)
    escaped = "".join(f"\\{c}" if c in _INLINE_SPECIAL else c for c in shown)
    return Markdown(_WWW.sub(lambda m: m.group(0)[:-1] + "\\.", escaped))


def codes(values: Iterable[object], separator: str = ", ") -> Markdown:
    """Each value as a code span, joined."""
    return Markdown(separator.join(code(v) for v in values))


def python_string(value: str) -> Markdown:
    """``value`` as a Python string literal on one line (for a code example; fences cannot close in it)."""
    return Markdown(json.dumps(value, ensure_ascii=True))


def inline(value: Any) -> Any:
    """How a template writes a value: Markdown as it is, numbers as numbers, a dash for nothing, the rest as
    a code span."""
    if isinstance(value, Markdown):
        return value
    if value is None or isinstance(value, jinja2.Undefined):
        return "—"
    if isinstance(value, bool | int | float):
        return str(value)
    return code(value)


def card_environment() -> jinja2.Environment:
    """A jinja2 environment where every value is written through :func:`inline` (``text``, ``code``,
    ``codes`` and ``python_string`` filters for the other forms)."""
    env = jinja2.Environment(finalize=inline)
    env.filters.update(text=text, code=code, codes=codes, python_string=python_string)
    return env

"""User text made safe to show: control characters made visible, very long text elided. Pure.

Every renderer (the terminal, the dataset card, the plots) passes the user's values through here first, so a
prompt, a file name or a model name can neither drive the terminal (ANSI escapes, carriage returns), nor
reverse the reading order (bidi overrides), nor split one line into two.
"""

from __future__ import annotations

import unicodedata

# Format characters that reorder or hide text (bidi embeddings, overrides and isolates, the byte-order mark)
# and the Unicode line and paragraph separators, which some renderers treat as line ends.
_INVISIBLE = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff\u2028\u2029"
)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _hidden(char: str) -> bool:
    # Cc: control characters; Cs: lone surrogates (an undecodable byte of a file name), unprintable as UTF-8.
    return char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cs")


def visible(text: object) -> str:
    """``text`` on one line: every control character (newlines and tabs too), lone surrogate, and bidi or
    separator character written as its escape (``\\x1b``, ``\\n``, ``\\u202e``); everything else as it was."""
    value = str(text)
    if not any(_hidden(c) for c in value):
        return value
    return "".join(_escaped(c) if _hidden(c) else c for c in value)


def visible_lines(text: object) -> str:
    """Like :func:`visible`, but line breaks (``\\n``) stay: for messages of several lines."""
    return "\n".join(visible(line) for line in str(text).split("\n"))


def elided(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (about), keeping its start and end, saying how much went.

    The end is kept too: an error's advice comes last.
    """
    if len(text) <= limit:
        return text
    head = max(1, limit * 2 // 3)
    tail = max(0, limit - head - 1)
    dropped = len(text) - head - tail
    return f"{text[:head]}… ({dropped:,} characters left out) …{text[len(text) - tail :] if tail else ''}"


def clipped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a trailing ellipsis (labels, where the start says most)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"

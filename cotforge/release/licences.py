"""Licence ids as the Hub knows them: the list ships with cotforge (``data/release/hub_licences.txt``), so a
card's ``license:`` is checked offline. Pure but for reading that file once.
"""

from __future__ import annotations

import difflib
import functools
import re
from importlib import resources

LICENCE_LIST = "hub_licences.txt"
OTHER = "other"
UNKNOWN = "unknown"
# SPDX spellings that name a Hub licence in other words (the Hub's ids are lower-case, without -only/-or-later).
_SPDX_SUFFIX = re.compile(r"-(only|or-later)$")


@functools.cache
def hub_licence_ids() -> frozenset[str]:
    """Every licence id the Hub accepts (as of the shipped list)."""
    text = (resources.files("cotforge") / "data" / "release" / LICENCE_LIST).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def hub_licence(name: str) -> str | None:
    """The Hub id a licence name stands for (``Apache-2.0`` → ``apache-2.0``, ``GPL-3.0-only`` →
    ``gpl-3.0``), or ``None`` when the Hub has no such id."""
    key = name.strip().lower()
    for candidate in (key, _SPDX_SUFFIX.sub("", key)):
        if candidate in hub_licence_ids():
            return candidate
    return None


def checked_licence(name: str) -> str:
    """``name`` as a Hub licence id; ``ValueError`` naming close ids (and ``other``) when it is not one."""
    found = hub_licence(name)
    if found is not None:
        return found
    close = difflib.get_close_matches(name.strip().lower(), sorted(hub_licence_ids()), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(
        f"{name!r} is not a licence id the Hugging Face Hub knows; {hint}use one from "
        f"https://huggingface.co/docs/hub/repositories-licenses, or `{OTHER}` and name the licence in the card"
    )

"""The refusal detector behind refusal consistency: phrase patterns, plus an optional LLM check.

Patterns decide first; the LLM check (when configured) is asked about the answers the patterns call
compliant, since pattern misses are mostly polite redirects phrased in ways no list anticipates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from cotforge.refusal_patterns import REDIRECT_PATTERN, REFUSAL_PATTERN


class RefusalPatterns(BaseModel):
    """Phrase patterns (Python regexes, case-insensitive) that mark a refusal or a safe redirect."""

    model_config = ConfigDict(extra="forbid")

    refusal: list[str] = Field(default_factory=lambda: [REFUSAL_PATTERN])
    redirect: list[str] = Field(default_factory=lambda: [REDIRECT_PATTERN])


class RefusalDetector:
    """Does an answer refuse or safely redirect? Compiled once from :class:`RefusalPatterns`."""

    def __init__(self, patterns: RefusalPatterns | None = None) -> None:
        p = patterns or RefusalPatterns()
        self._refusal = _compile(p.refusal)
        self._redirect = _compile(p.redirect)

    def refuses(self, answer: str) -> bool:
        """True when the answer declines (an explicit refusal phrase)."""
        return any(rx.search(answer) for rx in self._refusal)

    def refuses_or_redirects(self, answer: str) -> bool:
        """True when the answer declines or points somewhere safe."""
        return self.refuses(answer) or any(rx.search(answer) for rx in self._redirect)


def _compile(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]

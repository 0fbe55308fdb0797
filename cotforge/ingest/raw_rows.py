"""The raw input row the source readers produce and the ingest core consumes (a leaf module)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawRow:
    """One input row as read, with where it came from (``line`` is 1-based: a line, or a data row)."""

    source: str
    line: int
    data: Mapping[str, Any] | None
    # Set by a reader that could not turn the line into a mapping (bad JSON, non-UTF-8, ragged CSV).
    error: tuple[str, str] | None = None
    raw: Any = None

"""The base of every record, and the types and limits records share."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["utility", "safety"]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegInt = Annotated[int, Field(ge=0)]

# Generous bounds for validation; generation asks for tighter ones (see the generation config).
MAX_PROMPT_CHARS = 8000
MAX_STEP_CHARS = 2000
MAX_STEPS = 24
MAX_ANSWER_CHARS = 8000


def content_id(prefix: str, *parts: str) -> str:
    """A stable id: ``prefix`` + 16 hex digits of SHA-256 over the parts (unit-separator joined)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:16]}"


def utc_now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class Record(BaseModel):
    """Base of every record: frozen, unknown fields rejected.

    ``record_key`` names the field (or fields) that identify a record within a run file (``None``: records have
    no identity, such as rejects): two lines with the same key and different content are an error on read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    record_key: ClassVar[str | tuple[str, ...] | None] = None

"""What a report section is: a title, whether its stage ran, figures (PNG bytes) and small tables."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SectionStatus = Literal["ok", "not run"]


class Figure(BaseModel):
    """One plot: ``name`` is its PNG file's stem (unique in a report)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    caption: str
    png: bytes = Field(repr=False)


class Table(BaseModel):
    """A small table shown under the plots."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    headers: list[str]
    rows: list[list[str]]


class Section(BaseModel):
    """One part of the report; ``status`` is ``not run`` when the stage behind it left no files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    title: str
    status: SectionStatus = "ok"
    note: str = ""
    figures: list[Figure] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)


def not_run(key: str, title: str, why: str) -> Section:
    """A section whose inputs are missing: it says so instead of drawing."""
    return Section(key=key, title=title, status="not run", note=why)


def fmt(value: object) -> str:
    """A table cell: floats to 4 significant digits, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

"""Ingest: raw prompt rows (JSONL, CSV, Parquet, a `datasets` dataset) → :class:`PromptRecord`.

The core (:func:`ingest_rows`) is pure: rows in, prompts + rejects + near-duplicate report out. The edge
(:mod:`cotforge.ingest.sources`) reads files into rows, naming each by file and line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cotforge.ingest.raw_rows import RawRow
from cotforge.schemas import MAX_PROMPT_CHARS, Kind, PromptRecord, RejectRecord
from cotforge.taxonomy import map_category

DEFAULT_TEXT_COLUMNS = ("prompt", "text", "instruction", "goal", "question", "query")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_INLINE_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LOOSE = re.compile(r"[^\w]+")


class IngestConfig(BaseModel):
    """What to ingest and how raw rows map onto prompt records (the same model for the command and the step)."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(
        default_factory=list,
        description="JSONL, CSV or Parquet files, `datasets` folders, or Hub ids (when online).",
    )
    bundled: bool = Field(default=False, description="Ingest the sample prompts shipped with cotforge.")
    limit_per_source: int | None = Field(
        default=None, ge=1, description="Keep the first N rows of each source."
    )
    split: str = Field(default="train", description="Split read from `datasets` sources.")

    kind: Kind | None = Field(default=None, description="Kind for every row; else read from kind_column.")
    text_column: str | None = Field(default=None, description=f"Default: first of {DEFAULT_TEXT_COLUMNS}.")
    category_column: str = "category"
    kind_column: str = "kind"
    source_column: str = "source"
    licence_column: str = "licence"
    source: str | None = Field(default=None, description="Source name; default: the row's or the file's.")
    licence: str = "unknown"
    max_chars: int = Field(default=MAX_PROMPT_CHARS, ge=1, le=MAX_PROMPT_CHARS)
    category_map: dict[str, str] = Field(default_factory=dict, description="Source label → category.")
    kind_map: dict[str, Kind] = Field(
        default_factory=dict, description="Kind label as the source gives it → utility or safety."
    )

    @model_validator(mode="before")
    @classmethod
    def _flatten_options(cls, data: Any) -> Any:
        # Pipelines written before the step and the command shared this model kept the mapping keys under
        # `options:`; they still run.
        if isinstance(data, dict) and isinstance(data.get("options"), dict):
            rest = {k: v for k, v in data.items() if k != "options"}
            data = {**data["options"], **rest}
        return data


@dataclass
class IngestResult:
    prompts: list[PromptRecord] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    duplicates: int = 0
    already_present: int = 0
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)


def normalise_text(text: str) -> str:
    """Unicode NFC, control characters dropped, inline whitespace collapsed, blank-line runs capped."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def loose_key(text: str) -> str:
    """Case-, punctuation- and word-order-insensitive key: equal keys mark near-duplicates."""
    return " ".join(sorted(t for t in _LOOSE.split(text.casefold()) if t))


def _pick_text_column(data: Mapping[str, Any], config: IngestConfig) -> str | None:
    if config.text_column is not None:
        return config.text_column if config.text_column in data else None
    return next((c for c in DEFAULT_TEXT_COLUMNS if c in data), None)


def _reject(row: RawRow, code: str, message: str) -> RejectRecord:
    raw = row.raw if row.raw is not None else (dict(row.data) if row.data is not None else None)
    return RejectRecord(
        stage="ingest",
        source=row.source,
        line=row.line,
        reasons=[code],
        message=f"{row.source}:{row.line}: {message}",
        raw=raw,
    )


def _kind_of(data: Mapping[str, Any], config: IngestConfig) -> str | None:
    if config.kind is not None:
        return config.kind
    value = data.get(config.kind_column)
    if value in (None, ""):
        return None
    label = str(value).strip()
    mapped = config.kind_map.get(label) or config.kind_map.get(label.lower())
    return mapped or label.lower()


def row_to_prompt(row: RawRow, config: IngestConfig) -> PromptRecord | RejectRecord:
    """One raw row → a prompt record, or a reject naming the row and what to do."""
    if row.error is not None:
        return _reject(row, *row.error)
    data = row.data or {}
    column = _pick_text_column(data, config)
    if column is None:
        wanted = config.text_column or " / ".join(DEFAULT_TEXT_COLUMNS)
        return _reject(row, "missing_text_column", f"no text column ({wanted}); pass --text-column")
    value = data.get(column)
    if not isinstance(value, str):
        return _reject(row, "empty_prompt", f"column {column!r} is empty or not text")
    text = normalise_text(value)
    if not text:
        return _reject(row, "empty_prompt", f"column {column!r} is empty after normalisation")
    if len(text) > config.max_chars:
        return _reject(
            row, "too_long", f"prompt has {len(text)} characters, over the limit of {config.max_chars}"
        )
    kind = _kind_of(data, config)
    if kind not in ("utility", "safety"):
        return _reject(
            row, "bad_kind", f"kind {kind!r} is not 'utility' or 'safety'; pass --kind or --kind-map"
        )
    label = data.get(config.category_column)
    label_text = None if label in (None, "") else str(label)
    try:
        category = map_category(label_text, kind, config.category_map)
        return PromptRecord(
            id=PromptRecord.make_id(text, kind),  # type: ignore[arg-type]
            text=text,
            kind=kind,  # type: ignore[arg-type]
            category=category,
            source=config.source or str(data.get(config.source_column) or row.source),
            licence=str(data.get(config.licence_column) or config.licence),
            source_label=label_text,
        )
    except (ValueError, ValidationError) as exc:
        return _reject(row, "invalid_record", str(exc).splitlines()[0])


def ingest_rows(
    rows: Iterable[RawRow], config: IngestConfig, existing: Iterable[PromptRecord] = ()
) -> IngestResult:
    """Turn rows into prompts: reject bad rows, drop exact duplicates (as rejects), report near-duplicates.

    ``existing`` are prompts already in the run folder; a row equal to one of them is counted as already
    present (re-ingesting a file is idempotent), not as a duplicate.
    """
    result = IngestResult()
    seen: dict[str, str] = {p.id: "the run folder" for p in existing}
    prior = set(seen)
    loose: dict[str, str] = {}
    for p in existing:
        loose.setdefault(loose_key(p.text), p.id)
    for row in rows:
        out = row_to_prompt(row, config)
        if isinstance(out, RejectRecord):
            result.rejects.append(out)
            continue
        if out.id in seen:
            if out.id in prior:
                result.already_present += 1
                continue
            result.duplicates += 1
            result.rejects.append(
                _reject(row, "duplicate", f"exact duplicate of {seen[out.id]} (id {out.id}); kept the first")
            )
            continue
        seen[out.id] = f"{row.source}:{row.line}"
        key = loose_key(out.text)
        if key in loose:
            result.near_duplicates.append((out.id, loose[key]))
        else:
            loose[key] = out.id
        result.prompts.append(out)
    return result

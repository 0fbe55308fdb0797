"""Ingest: raw prompt rows (JSONL, CSV, Parquet, a `datasets` dataset) → :class:`PromptRecord`.

The core (:func:`ingest_rows`) is pure: rows in, prompts + rejects + near-duplicate report out. The edge
(:mod:`cotforge.ingest.sources`) reads files into rows, naming each by file and line.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cotforge.ingest.raw_rows import RawRow
from cotforge.schemas import MAX_PROMPT_CHARS, Kind, PromptRecord, RejectRecord
from cotforge.taxonomy import map_category
from cotforge.text_identity import identity_text, match_words

DEFAULT_TEXT_COLUMNS = ("prompt", "text", "instruction", "goal", "question", "query")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_INLINE_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")  # spaces; zero-width ones are no space
_MANY_NEWLINES = re.compile(r"\n{3,}")


class IngestConfig(BaseModel):
    """What to ingest and how raw rows map onto prompt records (the same model for the command and the step)."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(
        default_factory=list,
        description="JSONL, JSON, CSV, TSV or Parquet files, `datasets` folders, Hub ids (when online), or `-` (JSONL on stdin).",
    )
    bundled: bool = Field(default=False, description="Ingest the sample prompts shipped with cotforge.")
    limit_per_source: int | None = Field(
        default=None, ge=1, description="Keep the first N rows of each source."
    )
    split: str = Field(default="train", description="Split read from `datasets` sources.")

    kind: Kind | None = Field(
        default=None,
        description="Kind of rows without a kind label of their own; a row whose own label (kind_column, "
        "after kind_map) says otherwise is rejected (kind_conflict). To overrule the labels, set kind_column ''.",
    )
    text_column: str | None = Field(default=None, description=f"Default: first of {DEFAULT_TEXT_COLUMNS}.")
    category_column: str = "category"
    kind_column: str = Field(default="kind", description="Column of each row's kind label; '' ignores it.")
    source_column: str = "source"
    licence_column: str = "licence"
    source: str | None = Field(
        default=None,
        description="Source name for every row (rows naming another source are counted in the manifest); "
        "default: the row's own, else the file's.",
    )
    licence: str = Field(
        default="unknown",
        description="Licence of rows that name none; a row's own licence wins (differences are counted).",
    )
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
    """Prompts and rejects of some rows; ``overruled`` counts the rows whose own label a flag's value did not
    follow (``source``: replaced by ``--source``; ``licence``: kept over ``--licence``)."""

    prompts: list[PromptRecord] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    duplicates: int = 0
    already_present: int = 0
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)
    overruled: Counter[str] = field(default_factory=Counter)


def normalise_text(text: str) -> str:
    """The text a record keeps: Unicode NFC, control characters dropped, inline whitespace collapsed, blank-line
    runs capped. Comparisons use :mod:`cotforge.text_identity` instead."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def loose_key(text: str) -> str:
    """Case-, punctuation- and word-order-insensitive key over the text's identity: equal keys mark
    near-duplicates."""
    return " ".join(sorted(match_words(text)))


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


def _own_kind(data: Mapping[str, Any], config: IngestConfig) -> str | None:
    """The row's own kind label, mapped through ``kind_map`` (None when the row has none)."""
    value = data.get(config.kind_column) if config.kind_column else None
    label = "" if value is None else str(value).strip()
    if not label:
        return None
    mapped = config.kind_map.get(label) or config.kind_map.get(label.lower())
    return mapped or label.lower()


def _kind_of(row: RawRow, data: Mapping[str, Any], config: IngestConfig) -> str | RejectRecord:
    own = _own_kind(data, config)
    if config.kind is not None and own is not None and own != config.kind:
        return _reject(
            row,
            "kind_conflict",
            f"the row's {config.kind_column!r} label says {own!r} but --kind says {config.kind!r}; drop "
            "--kind to keep the row's label, map the label with --kind-map, or pass --kind-column '' to "
            "overrule every row's label",
        )
    kind = config.kind or own
    if kind is None:
        where = f"no {config.kind_column!r} label" if config.kind_column else "no kind (--kind-column '')"
        return _reject(row, "bad_kind", f"{where}; pass --kind utility|safety")
    if kind not in ("utility", "safety"):
        return _reject(
            row, "bad_kind", f"kind {kind!r} is not 'utility' or 'safety'; pass --kind or --kind-map"
        )
    return kind


def _own_label(data: Mapping[str, Any], column: str) -> str | None:
    value = data.get(column) if column else None
    return None if value is None or not str(value).strip() else str(value)


def _overruled(row: RawRow, config: IngestConfig) -> list[str]:
    """The labels of an accepted row that a flag's value did not follow (reported, never silent)."""
    data = row.data or {}
    out = []
    own_source = _own_label(data, config.source_column)
    if config.source is not None and own_source is not None and own_source != config.source:
        out.append("source")
    own_licence = _own_label(data, config.licence_column)
    if "licence" in config.model_fields_set and own_licence is not None and own_licence != config.licence:
        out.append("licence")
    return out


def row_to_prompt(row: RawRow, config: IngestConfig) -> PromptRecord | RejectRecord:
    """One raw row → a prompt record, or a reject naming the row and what to do."""
    if row.error is not None:
        return _reject(row, *row.error)
    data = row.data or {}
    column = _pick_text_column(data, config)
    if column is None:
        found = ", ".join(map(str, data)) or "none"
        if config.text_column is not None:
            message = f"no column {config.text_column!r} (--text-column); the row has: {found}"
        else:
            message = f"no text column ({' / '.join(DEFAULT_TEXT_COLUMNS)}; the row has: {found}); pass --text-column"
        return _reject(row, "missing_text_column", message)
    value = data.get(column)
    if not isinstance(value, str):
        return _reject(row, "empty_prompt", f"column {column!r} is empty or not text")
    text = normalise_text(value)
    if not text:
        return _reject(row, "empty_prompt", f"column {column!r} is empty after normalisation")
    if not identity_text(text):
        return _reject(row, "empty_prompt", f"column {column!r} holds only invisible characters")
    if len(text) > config.max_chars:
        return _reject(
            row, "too_long", f"prompt has {len(text)} characters, over the limit of {config.max_chars}"
        )
    kind = _kind_of(row, data, config)
    if isinstance(kind, RejectRecord):
        return kind
    label = data.get(config.category_column)
    label_text = None if label in (None, "") else str(label)
    try:
        category = map_category(label_text, kind, config.category_map)
        return PromptRecord(
            id=PromptRecord.make_id(text, kind),  # type: ignore[arg-type]
            text=text,
            kind=kind,  # type: ignore[arg-type]
            category=category,
            source=config.source or _own_label(data, config.source_column) or row.source,
            licence=_own_label(data, config.licence_column) or config.licence,
            source_label=label_text,
        )
    except (ValueError, ValidationError) as exc:
        return _reject(row, "invalid_record", str(exc).splitlines()[0])


_SAME_IDENTITY = (
    "duplicate (the same text once invisible characters, look-alike letters and spacing are ignored)"
)


def ingest_rows(
    rows: Iterable[RawRow], config: IngestConfig, existing: Iterable[PromptRecord] = ()
) -> IngestResult:
    """Turn rows into prompts: reject bad rows, drop exact duplicates (as rejects), report near-duplicates.

    Texts are compared by :func:`~cotforge.text_identity.identity_text`: a copy that differs only in invisible
    characters, look-alike letters or spacing is an exact duplicate, and the same text under the other kind is
    a ``kind_conflict``. ``existing`` are prompts already in the run folder; a row equal to one of them is
    counted as already present (re-ingesting a file is idempotent), not as a duplicate.
    """
    result = IngestResult()
    existing = list(existing)
    present = {p.id for p in existing}
    seen: dict[str, tuple[str, str, str]] = {}  # identity → (id, kind, where)
    loose: dict[str, str] = {}
    for p in existing:
        seen.setdefault(identity_text(p.text), (p.id, p.kind, "the run folder"))
        loose.setdefault(loose_key(p.text), p.id)
    for row in rows:
        out = row_to_prompt(row, config)
        if isinstance(out, RejectRecord):
            result.rejects.append(out)
            continue
        if out.id in present:  # this very prompt is in the run folder already
            result.already_present += 1
            continue
        identity = identity_text(out.text)
        if identity in seen:
            first_id, first_kind, where = seen[identity]
            if first_kind != out.kind:
                result.rejects.append(
                    _reject(
                        row,
                        "kind_conflict",
                        f"the same text as {where} (id {first_id}) is labelled {first_kind!r} there and "
                        f"{out.kind!r} here; one text has one kind: fix the label in one of them",
                    )
                )
                continue
            result.duplicates += 1
            what = "exact duplicate" if first_id == out.id else _SAME_IDENTITY
            result.rejects.append(
                _reject(row, "duplicate", f"{what} of {where} (id {first_id}); kept the first")
            )
            continue
        seen[identity] = (out.id, out.kind, f"{row.source}:{row.line}")
        result.overruled.update(_overruled(row, config))
        key = loose_key(out.text)
        if key in loose:
            result.near_duplicates.append((out.id, loose[key]))
        else:
            loose[key] = out.id
        result.prompts.append(out)
    return result

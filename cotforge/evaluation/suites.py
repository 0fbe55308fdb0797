"""Evaluation prompt suites: any prompt file, folder or Hub dataset, and the standard benchmarks' own layouts.

A suite is a list of :class:`SuiteItem` (a prompt and what a safe model should do with it: refuse or comply)
plus a :class:`SuiteReject` for every row that could not become one: nothing is dropped. The layouts live in
:mod:`cotforge.evaluation.suite_layouts` and the file reading in :mod:`cotforge.evaluation.suite_files`; this
module picks each file's layout and builds the items. A user mistake that concerns the whole suite (an unknown format,
columns that match no layout, a label outside refuse/comply) is one :class:`SuiteError`.

Rows keep their own id; rows without one get ``f"{suite}-{row}"``. In a folder of several files, ids are
``f"{file}-{id}"`` and ``f"{suite}-{file}-{row}"`` (files often number rows alike). ``row`` is the number a reject would name: the line for JSONL and CSV, the 1-based row for Parquet and datasets.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cotforge.errors import SuiteError
from cotforge.evaluation.suite_files import SuiteTable, read_suite_tables
from cotforge.evaluation.suite_layouts import (
    FORMATS,
    LAYOUT_BY_FORMAT,
    LAYOUTS,
    Expected,
    Layout,
    LayoutContext,
    read_jbb_artifact,
)
from cotforge.ingest.json_rows import read_jsonl_rows
from cotforge.ingest.raw_rows import RawRow
from cotforge.ingest.rows import IngestConfig, row_to_prompt
from cotforge.schemas import RejectRecord

__all__ = [
    "FORMATS",
    "Expected",
    "LoadedSuite",
    "SuiteItem",
    "SuiteReject",
    "SuiteSpec",
    "bundled_suite",
    "load_suite",
]

# A reader's error code → the suite's reason code.
_READER_CODES = {"non_utf8": "undecodable"}


class SuiteItem(BaseModel):
    """One prompt of a suite and what a safe model should do with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: str
    id: str
    prompt: str
    expected: Expected
    category: str | None = None
    source: str | None = None
    meta: dict[str, str] = Field(default_factory=dict)


class SuiteReject(BaseModel):
    """A row that could not become an item, with where it is and why (a reason code)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: str
    file: str
    row: int | None
    item_id: str | None
    reason: str
    message: str = ""


class SuiteSpec(BaseModel):
    """A suite as a user names it: a file, a folder or a Hub id, its format, and how to read it."""

    model_config = ConfigDict(extra="forbid")

    path: str
    format: str = "auto"
    name: str | None = None
    columns: dict[str, str] = Field(
        default_factory=dict, description="Our name → the file's column (generic)."
    )
    split: str | None = None
    subset: str | None = Field(default=None, description="Hub dataset config name, e.g. 'eval'.")
    expected: Expected | None = Field(
        default=None, description="Expected behaviour for every row whose file does not say it."
    )
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any) -> Any:
        # `suites: [harmbench.csv]` in a step, as `--suite harmbench.csv` on the command line.
        return {"path": data} if isinstance(data, str) else data


class LoadedSuite(BaseModel):
    """A suite's items and the rows it could not use."""

    model_config = ConfigDict(extra="forbid")

    name: str
    format: str
    items: list[SuiteItem]
    rejects: list[SuiteReject]


# --- layout choice ------------------------------------------------------------------------------------------


def _columns(table: SuiteTable) -> set[str]:
    columns: set[str] = set()
    for row in table.rows[:200]:
        if row.data is not None:
            columns.update(row.data)
    return columns


def _needed(layout: Layout, spec: SuiteSpec) -> set[str]:
    """The columns a layout needs in this file, after the user's column mapping (generic only)."""
    if layout.format != "generic":
        return set(layout.signature)
    needed = {spec.columns.get("prompt", "prompt")}
    if spec.expected is None:
        needed.add(spec.columns.get("expected", "expected"))
    return needed


def _choose_layout(table: SuiteTable, spec: SuiteSpec) -> Layout:
    columns = _columns(table)
    if table.artifact:
        if spec.format not in ("auto", "jailbreakbench"):
            raise SuiteError(
                f"{table.name}: a JailbreakBench artifact (has `jailbreaks`), not format {spec.format!r}; "
                "use format jailbreakbench or auto",
                file=table.name,
            )
        return Layout("jailbreakbench", frozenset(), read_jbb_artifact)
    if not columns:
        raise SuiteError(f"{table.name}: no readable rows; check the file is not empty", file=table.name)
    if spec.format != "auto":
        layout = LAYOUT_BY_FORMAT[spec.format]
        missing = _needed(layout, spec) - columns
        if missing:
            raise SuiteError(
                f"{table.name}: format {spec.format} needs column(s) {', '.join(sorted(missing))}; "
                f"the file has {', '.join(sorted(columns))}"
                + ("; map them with `columns:` (--column OURS=THEIRS)" if spec.format == "generic" else ""),
                file=table.name,
            )
        return layout
    if spec.columns:
        return _choose_layout(table, spec.model_copy(update={"format": "generic"}))
    candidates = [layout for layout in LAYOUTS if _needed(layout, spec) <= columns]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise SuiteError(
            f"{table.name}: columns fit several formats ({', '.join(c.format for c in candidates)}); "
            "pick one with `format:` (--format)",
            file=table.name,
        )
    known = "; ".join(f"{layout.format}: {', '.join(sorted(layout.signature))}" for layout in LAYOUTS)
    raise SuiteError(
        f"{table.name}: columns {', '.join(sorted(columns))} match no suite format ({known}); "
        "rename the columns, map them with `columns:` (--column OURS=THEIRS), or pick `format:`",
        file=table.name,
    )


# --- items --------------------------------------------------------------------------------------------------


class _SuiteBuilder:
    """Turns rows into items and rejects for one suite, keeping ids unique and every row accounted for."""

    def __init__(self, name: str, spec: SuiteSpec, many_files: bool) -> None:
        self.name, self.spec, self.many_files = name, spec, many_files
        self.items: list[SuiteItem] = []
        self.rejects: list[SuiteReject] = []
        self.ids: dict[str, int] = {}

    def full(self) -> bool:
        return self.spec.limit is not None and len(self.items) >= self.spec.limit

    def reject(
        self, table: SuiteTable, row: int | None, item_id: str | None, reason: str, message: str
    ) -> None:
        where = f"{table.name}, row {row}" if row is not None else table.name
        self.rejects.append(
            SuiteReject(
                suite=self.name,
                file=table.name,
                row=row,
                item_id=item_id,
                reason=reason,
                message=f"{where}: {message}",
            )
        )

    def add_table(self, table: SuiteTable, layout: Layout) -> None:
        context = LayoutContext(
            stem=table.stem, split=table.split, expected=self.spec.expected, columns=self.spec.columns
        )
        for raw in table.rows:
            if self.full():
                return
            self.add_row(table, layout, context, raw)

    def add_row(self, table: SuiteTable, layout: Layout, context: LayoutContext, raw: RawRow) -> None:
        if raw.error is not None or raw.data is None:
            code, message = raw.error or ("not_an_object", "not a row")
            self.reject(table, raw.line, None, _READER_CODES.get(code, code), message)
            return
        try:
            read = layout.read(raw.data, context)
        except SuiteError as exc:
            raise SuiteError(f"{table.name}, row {raw.line}: {exc}", file=table.name, line=raw.line) from exc
        if self.many_files:  # files of one folder often number their rows alike: the file keeps ids apart
            item_id = f"{table.stem}-{read.id}" if read.id else f"{self.name}-{table.stem}-{raw.line}"
        else:
            item_id = read.id or f"{self.name}-{raw.line}"
        problem = read.reject or _prompt_problem(read.prompt)
        if problem is None and read.expected is None:
            problem = (
                "missing_expected",
                "no expected behaviour (refuse|comply); fill it or set `expected:`",
            )
        if problem is None and item_id in self.ids:
            problem = (
                "duplicate_id",
                f"id {item_id!r} already used by row {self.ids[item_id]}; kept the first",
            )
        if problem is not None:
            self.reject(table, raw.line, item_id, *problem)
            return
        self.ids[item_id] = raw.line
        self.items.append(
            SuiteItem(
                suite=self.name,
                id=item_id,
                prompt=read.prompt,
                expected=read.expected,  # type: ignore[arg-type]
                category=read.category,
                source=read.source,
                meta=read.meta,
            )
        )


def _prompt_problem(prompt: Any) -> tuple[str, str] | None:
    if prompt is None:
        return "missing_prompt", "no prompt in this row"
    if not isinstance(prompt, str):
        return "not_text", f"the prompt is a {type(prompt).__name__}, not text"
    if not prompt.strip():
        return "empty_prompt", "the prompt is empty or whitespace"
    if any("\udc80" <= ch <= "\udcff" for ch in prompt):
        return "undecodable", "the prompt is not valid UTF-8; re-encode the file as UTF-8"
    return None


def _suite_name(spec: SuiteSpec) -> str:
    if spec.name:
        return spec.name
    path = Path(spec.path)
    if path.is_file():
        return path.stem
    return path.name or spec.path


def load_suite(spec: SuiteSpec) -> LoadedSuite:
    """Read a suite: every row becomes an item or a reject; a whole-suite problem raises :class:`SuiteError`."""
    if spec.format not in ("auto", *FORMATS):
        raise SuiteError(
            f"{spec.path}: unknown suite format {spec.format!r}; use auto or one of {', '.join(FORMATS)}",
            file=spec.path,
        )
    tables = read_suite_tables(spec.path, spec.split, spec.subset)
    name = _suite_name(spec)
    builder = _SuiteBuilder(name, spec, many_files=len(tables) > 1)
    formats: list[str] = []
    for table in tables:
        layout = _choose_layout(table, spec)
        formats.append(layout.format)
        builder.add_table(table, layout)
    return LoadedSuite(
        name=name,
        format=formats[0] if len(set(formats)) == 1 else "mixed",
        items=builder.items,
        rejects=builder.rejects,
    )


# --- the bundled prompts ------------------------------------------------------------------------------------

BUNDLED_EXPECTED: dict[str, Expected] = {"advbench_heldout": "refuse", "borderline_benign": "comply"}


def _bundled_rows(stem: str) -> Iterable[RawRow]:
    return read_jsonl_rows(Path(str(resources.files("cotforge") / "data" / "eval" / f"{stem}.jsonl")))


def bundled_suite(limit: int | None = None) -> LoadedSuite:
    """The bundled 80 prompts as suite "bundled": held-out AdvBench (refuse) and borderline-benign (comply).

    ``limit`` caps each of the two files, as the legacy evaluation does. Texts and ``meta["prompt_id"]`` are
    those of the ingested prompts the legacy evaluation asks.
    """
    items: list[SuiteItem] = []
    rejects: list[SuiteReject] = []
    config = IngestConfig()
    for stem, expected in BUNDLED_EXPECTED.items():
        kept = 0
        for row in _bundled_rows(stem):
            if limit is not None and kept >= limit:
                break
            prompt = row_to_prompt(row, config)
            if isinstance(prompt, RejectRecord):
                rejects.append(
                    SuiteReject(
                        suite="bundled",
                        file=row.source,
                        row=row.line,
                        item_id=None,
                        reason=prompt.reasons[0],
                        message=prompt.message,
                    )
                )
                continue
            kept += 1
            items.append(
                SuiteItem(
                    suite="bundled",
                    id=f"{stem}-{row.line}",
                    prompt=prompt.text,
                    expected=expected,
                    category=prompt.source_label,
                    source=prompt.source,
                    meta={"file": stem, "prompt_id": prompt.id},
                )
            )
    return LoadedSuite(name="bundled", format="generic", items=items, rejects=rejects)

"""Readers that turn prompt files into :class:`RawRow` streams, one row per line or data row.

A reader never raises on a bad line: it yields a row carrying the error code and message, so the ingest core
rejects it with file and line and the good rows still land. It raises only when the source as a whole cannot
be opened, with a message saying what to do.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonlines

from cotforge.errors import CotforgeError
from cotforge.ingest.raw_rows import RawRow


class SourceError(CotforgeError):
    """The source as a whole cannot be read."""


def read_jsonl_rows(path: Path) -> Iterator[RawRow]:
    """JSON Lines: one object per line; bad JSON, non-objects and non-UTF-8 lines become error rows."""
    name = str(path)
    # Binary lines: only "\n" ends one (U+2028 in model text stays inside its line), and jsonlines reports a
    # line that is not UTF-8 as one bad line instead of failing the whole file.
    with path.open("rb") as fh:
        lineno, last = 0, b""

        def lines() -> Iterator[bytes]:
            nonlocal lineno, last
            for line in fh:
                lineno += 1  # the row yielded below reads it back: the line jsonlines just parsed
                last = line
                yield line

        reader = jsonlines.Reader(lines())
        while True:
            try:
                data = reader.read(type=dict, skip_empty=True)
            except EOFError:
                return
            except jsonlines.InvalidLineError as exc:
                yield _error_row(name, exc)
                continue
            except RecursionError:
                # Only this row is unreadable: reject it and keep reading.
                yield RawRow(name, lineno, None, ("too_deep", "JSON nested too deeply to read"), _text(last))
                continue
            if _deeper_than(data, MAX_ROW_DEPTH):
                yield RawRow(
                    name,
                    lineno,
                    None,
                    ("too_deep", f"JSON nested more than {MAX_ROW_DEPTH} levels"),
                    _text(last),
                )
                continue
            yield RawRow(name, lineno, data)


def _error_row(source: str, exc: jsonlines.InvalidLineError) -> RawRow:
    """The error row of a line jsonlines could not read: not UTF-8, not JSON, or not an object."""
    cause = exc.__cause__
    line = exc.line.decode("utf-8", errors="replace") if isinstance(exc.line, bytes) else exc.line
    if isinstance(cause, UnicodeDecodeError):
        error = ("non_utf8", f"not valid UTF-8 at byte {cause.start}; re-encode the file as UTF-8")
    elif isinstance(cause, json.JSONDecodeError):
        error = ("bad_json", f"bad JSON ({cause.msg} at column {cause.colno})")
    else:
        error = ("not_an_object", "expected a JSON object per line")
    return RawRow(source, exc.lineno, None, error, line)


# Rows are copied, validated and serialized recursively downstream; a prompt row is never this deep.
MAX_ROW_DEPTH = 32


def _deeper_than(value: object, limit: int) -> bool:
    """True when ``value`` nests lists/dicts more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\n")


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_csv_rows(path: Path) -> Iterator[RawRow]:
    """CSV with a header; ragged rows and non-UTF-8 fields become error rows (line = the row's last line)."""
    name = str(path)
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    for fields in reader:
        lineno = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        raw_line = ",".join(fields)
        if any(_has_surrogates(f) for f in fields):
            yield RawRow(
                name,
                lineno,
                None,
                ("non_utf8", "not valid UTF-8; re-encode the file as UTF-8"),
                raw_line.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace"),
            )
            continue
        if len(fields) != len(header):
            yield RawRow(
                name,
                lineno,
                None,
                (
                    "malformed_row",
                    f"{len(fields)} fields where the header has {len(header)}; check quoting and commas",
                ),
                raw_line,
            )
            continue
        yield RawRow(name, lineno, dict(zip(header, fields, strict=True)))


def _records_rows(name: str, records: Iterator[dict[str, Any]]) -> Iterator[RawRow]:
    for index, record in enumerate(records, start=1):
        yield RawRow(name, index, record)


def read_parquet_rows(path: Path) -> Iterator[RawRow]:
    """Parquet: rows numbered from 1 in file order."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise SourceError(f"{path}: cannot read as Parquet ({exc})") from exc
    yield from _records_rows(str(path), iter(table.to_pylist()))


def read_dataset_rows(spec: str, split: str = "train") -> Iterator[RawRow]:
    """A `datasets` dataset: a ``save_to_disk`` folder, a local data folder, or a Hub id when online."""
    import datasets

    path = Path(spec)
    try:
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(path))
            ds = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            ds = datasets.load_dataset(spec, split=split)
    except Exception as exc:
        raise SourceError(
            f"{spec}: cannot load as a `datasets` dataset ({type(exc).__name__}: {exc}); "
            "pass a local folder, or a Hub id while online"
        ) from exc
    yield from _records_rows(f"{spec}[{split}]", iter(ds))  # type: ignore[arg-type]


def read_rows(spec: str, split: str = "train") -> Iterator[RawRow]:
    """Pick a reader by file extension; anything else is treated as a `datasets` dataset."""
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".csv", ".parquet") and not path.is_file():
        raise SourceError(f"{spec}: file not found")
    if suffix in (".jsonl", ".json"):
        return read_jsonl_rows(path)
    if suffix == ".csv":
        return read_csv_rows(path)
    if suffix == ".parquet":
        return read_parquet_rows(path)
    return read_dataset_rows(spec, split)


BUNDLED_FILES = ("advbench_sample.jsonl", "donotanswer_sample.jsonl", "utility_prompts.jsonl")


def bundled_prompt_files() -> list[Path]:
    """The sample prompt files shipped inside the package (see ``cotforge/data/prompts/ATTRIBUTION.md``)."""
    root = resources.files("cotforge") / "data" / "prompts"
    return [Path(str(root / name)) for name in BUNDLED_FILES]

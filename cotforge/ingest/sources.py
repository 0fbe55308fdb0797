"""Readers that turn prompt files into :class:`RawRow` streams, one row per line or data row.

A reader never raises on a bad line: it yields a row carrying the error code and message, so the ingest core
rejects it with file and line and the good rows still land. It raises only when the source as a whole cannot
be used (not a regular file or folder, a compressed or unknown file type, a header that names one column twice,
an unreadable Parquet file), with a message saying what to do. ``-`` reads JSON Lines from stdin.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from cotforge.errors import CotforgeError
from cotforge.ingest.json_rows import read_json_rows, read_jsonl_rows, read_jsonl_stream
from cotforge.ingest.raw_rows import RawRow
from cotforge.input_paths import COMPRESSED, STDIN, check_input_path, read_stdin
from cotforge.text_identity import identity_text


class SourceError(CotforgeError):
    """The source as a whole cannot be read."""


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def column_names(source: str, header: list[str]) -> list[str]:
    """A header's column names: stripped, blank ones named ``column_<n>``; two names that read alike (the same
    once case, spacing, invisible and look-alike characters are ignored) are a :class:`SourceError`."""
    names = [h.strip().lstrip("\ufeff").strip() or f"column_{i}" for i, h in enumerate(header, start=1)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        key = identity_text(name).casefold()
        if key in seen:
            first = seen[key]
            raise SourceError(
                f"{source}: columns {first} ({names[first - 1]!r}) and {i} ({name!r}) have the same name; "
                "rename one of them (cotforge will not guess which one holds the data)",
                file=source,
            )
        seen[key] = i
    return names


def read_csv_rows(path: Path, delimiter: str = ",") -> Iterator[RawRow]:
    """CSV (or TSV) with a header, read as a stream; ragged rows, non-UTF-8 fields and rows the csv module
    cannot parse become error rows (line = the row's last line). Repeated column names refuse the file."""
    name = str(path)
    sep = "tabs" if delimiter == "\t" else "commas"
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        # strict: a stray quote is an error row, not a field that silently swallows the rows after it.
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            header = column_names(name, next(reader))
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(f"{name}:1: cannot read the header ({exc})", file=name) from exc
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                lines = f"line {start}" if reader.line_num <= start else f"lines {start}–{reader.line_num}"
                message = (
                    f"{lines}: {exc}; check the quotes there (an unclosed quote swallows the rows after it; a "
                    'quote inside a field is written twice: "")'
                )
                yield RawRow(name, reader.line_num, None, ("malformed_row", message))
                continue
            lineno = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            raw_line = delimiter.join(fields)
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
                        f"{len(fields)} fields where the header has {len(header)}; check quoting and {sep}",
                    ),
                    raw_line,
                )
                continue
            yield RawRow(name, lineno, dict(zip(header, fields, strict=True)))


def _records_rows(name: str, records: Iterator[dict[str, Any]]) -> Iterator[RawRow]:
    for index, record in enumerate(records, start=1):
        yield RawRow(name, index, record)


def read_parquet_rows(path: Path) -> Iterator[RawRow]:
    """Parquet: rows numbered from 1 in file order; repeated column names refuse the file."""
    import pyarrow.parquet as pq

    try:
        # Before reading: pyarrow's own message for repeated names is cryptic.
        column_names(str(path), pq.read_schema(path).names)
        table = pq.read_table(path)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{path}: cannot read as Parquet ({exc})", file=path) from exc
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
        what = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        hint = (
            "a folder must be saved with `save_to_disk` or hold data files of one layout; pass the files themselves"
            if path.is_dir()
            else "pass a local file or folder, or a Hub id while online"
        )
        raise SourceError(f"{spec}: cannot load as a `datasets` dataset ({what}); {hint}", file=spec) from exc
    yield from _records_rows(f"{spec}[{split}]", iter(ds))  # type: ignore[arg-type]


FILE_READERS: dict[str, Callable[[Path], Iterator[RawRow]]] = {
    ".jsonl": read_jsonl_rows,
    ".json": read_json_rows,
    ".csv": read_csv_rows,
    ".tsv": lambda path: read_csv_rows(path, "\t"),
    ".parquet": read_parquet_rows,
}
STDIN_SOURCE = "<stdin>"


def looks_like_path(spec: str) -> bool:
    """True when ``spec`` names a local path (it exists, or has a file suffix or a path prefix), not a Hub id."""
    suffix = Path(spec).suffix.lower()
    return (
        os.path.lexists(spec)
        or suffix in FILE_READERS
        or suffix in COMPRESSED
        or spec.startswith(("/", "./", "../", "~"))
    )


def check_source(spec: str) -> None:
    """Refuse a source that names a path that is not a readable regular file or folder, or an unknown file type
    (before anything is read)."""
    if spec == STDIN or not looks_like_path(spec):
        return
    path = check_input_path(spec, "prompt source", stdin=True)
    if path.is_dir():
        return
    suffix = path.suffix.lower()
    if suffix not in FILE_READERS:
        raise SourceError(
            f"{spec}: unsupported file type {path.suffix or '(none)'!r}; use JSON Lines (.jsonl), CSV (.csv), "
            "TSV (.tsv) or Parquet (.parquet), or a `datasets` folder",
            file=spec,
        )
    if suffix != ".parquet":
        refuse_other_encodings(path)


# Byte-order marks of the Unicode encodings that are not UTF-8 (UTF-32 first: its LE mark starts like UTF-16's).
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def refuse_other_encodings(path: Path) -> None:
    """A text file that starts with a UTF-16 or UTF-32 byte-order mark is refused whole (every line would be
    rejected as not UTF-8, and its line ends would be misread)."""
    with path.open("rb") as fh:
        head = fh.read(4)
    for bom, encoding in _OTHER_BOMS:
        if head.startswith(bom):
            raise SourceError(
                f"{path}: encoded as {encoding}; cotforge reads UTF-8: re-encode it "
                f"(`iconv -f {encoding} -t UTF-8 {path} > {path.stem}.utf8{path.suffix}`)",
                file=path,
            )


def read_rows(spec: str, split: str = "train") -> Iterator[RawRow]:
    """Pick a reader by file extension; ``-`` is JSON Lines on stdin; a folder or a name that is no path is a
    `datasets` dataset."""
    check_source(spec)
    if spec == STDIN:
        return read_jsonl_stream(STDIN_SOURCE, io.BytesIO(read_stdin()))
    path = Path(spec)
    if looks_like_path(spec) and not path.is_dir():
        return FILE_READERS[path.suffix.lower()](path)
    return read_dataset_rows(spec, split)


BUNDLED_FILES = ("advbench_sample.jsonl", "donotanswer_sample.jsonl", "utility_prompts.jsonl")


def bundled_prompt_files() -> list[Path]:
    """The sample prompt files shipped inside the package (see ``cotforge/data/prompts/ATTRIBUTION.md``)."""
    root = resources.files("cotforge") / "data" / "prompts"
    return [Path(str(root / name)) for name in BUNDLED_FILES]

"""Readers that turn prompt files into :class:`RawRow` streams, one row per line or data row.

A reader never raises on a bad line: it yields a row carrying the error code and message, so the ingest core
rejects it with file and line and the good rows still land. It raises only when the source as a whole cannot
be used (not a regular file or folder, a compressed or unknown file type, a header that names one column twice,
an unreadable Parquet file), with a message saying what to do. ``-`` reads JSON Lines from stdin.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from cotforge import input_paths
from cotforge.errors import CotforgeError
from cotforge.ingest.raw_rows import RawRow
from cotforge.input_paths import COMPRESSED, STDIN, check_input_path, read_stdin, read_whole_file
from cotforge.text_identity import identity_text


class SourceError(CotforgeError):
    """The source as a whole cannot be read."""


class _RepeatedKeys(dict[str, Any]):
    """An object parsed from JSON that named ``key`` twice (the last value kept, as ``json`` does)."""

    key = ""


def marked_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that marks (instead of refusing) an object naming a key twice: in a JSON array of
    rows, only the row with the repeat is rejected."""
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                marked = _RepeatedKeys(out)
                marked.key = key
                return marked
            seen.add(key)
    return out


def _repeated_key(value: object) -> str | None:
    """The first repeated key (see :func:`marked_repeats`) anywhere in ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _RepeatedKeys):
            return item.key
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


# A prompt row is at most a few kilobytes; a longer line is skipped as one reject without holding it whole.
MAX_LINE_BYTES = 16 * 1024**2
_BOM = b"\xef\xbb\xbf"


def _lines(fh: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` split on ``"\\n"`` only; ``None`` for a line over :data:`MAX_LINE_BYTES`."""
    lineno = 0
    while line := fh.readline(MAX_LINE_BYTES + 1):
        lineno += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (chunk := fh.readline(1024 * 1024)) and not chunk.endswith(b"\n"):
                pass
            yield lineno, None
            continue
        yield lineno, line


def _jsonl_row(name: str, lineno: int, line: bytes | None) -> RawRow | None:
    """One JSON Lines line as a row or an error row; ``None`` for a blank line."""
    if line is None:
        return RawRow(name, lineno, None, ("line_too_long", f"line longer than {MAX_LINE_BYTES} bytes"))
    if lineno == 1 and line.startswith(_BOM):
        line = line[len(_BOM) :]
    if not line.strip():
        return None
    raw = _text(line)
    try:
        data = json.loads(line.decode("utf-8"), object_pairs_hook=marked_repeats)
    except UnicodeDecodeError as exc:
        error = ("non_utf8", f"not valid UTF-8 at byte {exc.start}; re-encode the file as UTF-8")
    except RecursionError:
        # Only this row is unreadable: reject it and keep reading.
        error = ("too_deep", "JSON nested too deeply to read")
    except json.JSONDecodeError as exc:
        error = ("bad_json", f"bad JSON ({exc.msg} at column {exc.colno})")
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        error = ("bad_json", f"bad JSON ({exc})")
    else:
        return object_row(name, lineno, data, raw, "expected a JSON object per line")
    return RawRow(name, lineno, None, error, raw)


def object_row(name: str, number: int, data: Any, raw: Any, not_object: str) -> RawRow:
    """A parsed JSON value as a row, or an error row: not an object, too deep, a repeated key, a lone surrogate."""
    if not isinstance(data, dict):
        return RawRow(name, number, None, ("not_an_object", not_object), raw)
    if _deeper_than(data, MAX_ROW_DEPTH):
        return RawRow(name, number, None, ("too_deep", f"JSON nested more than {MAX_ROW_DEPTH} levels"), raw)
    repeated = _repeated_key(data)
    if repeated is not None:
        message = f"key {repeated!r} appears twice in one object; keep one of them"
        return RawRow(name, number, None, ("duplicate_key", message), raw)
    if _holds_surrogates(data):
        message = "an escape such as \\ud800 stands for half a character (a lone surrogate), not text"
        return RawRow(name, number, None, ("non_utf8", message), raw)
    return RawRow(name, number, data)


def read_jsonl_stream(name: str, fh: BinaryIO) -> Iterator[RawRow]:
    """JSON Lines from an open binary stream; bad lines become error rows (see :func:`read_jsonl_rows`)."""
    for lineno, line in _lines(fh):
        row = _jsonl_row(name, lineno, line)
        if row is not None:
            yield row


def read_jsonl_rows(path: Path) -> Iterator[RawRow]:
    """JSON Lines: one object per line; bad JSON, non-objects, keys named twice, non-UTF-8 and over-long lines
    become error rows. Only ``"\\n"`` ends a line (U+2028 in model text stays inside its line)."""
    with path.open("rb") as fh:
        yield from read_jsonl_stream(str(path), fh)


def read_json_rows(path: Path) -> Iterator[RawRow]:
    """A ``.json`` file: one JSON document (an array of row objects, or one object) when it parses as one and
    fits :data:`~cotforge.input_paths.MAX_WHOLE_FILE_BYTES`; else JSON Lines. Array rows are numbered from 1."""
    name = str(path)
    document: Any = None
    if path.stat().st_size <= input_paths.MAX_WHOLE_FILE_BYTES:
        try:
            text = read_whole_file(path).decode("utf-8-sig")
            document = json.loads(text, object_pairs_hook=marked_repeats)
        except (UnicodeDecodeError, ValueError, RecursionError):
            document = None  # not one document: JSON Lines, whose reader names each bad line
    if isinstance(document, list):
        for i, item in enumerate(document, start=1):
            yield object_row(name, i, item, None if isinstance(item, dict) else item, "expected an object")
    elif isinstance(document, dict):
        yield object_row(name, 1, document, None, "expected an object")
    else:
        yield from read_jsonl_rows(path)


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


def _holds_surrogates(value: object) -> bool:
    """True when a string anywhere in ``value`` (keys included) holds a lone surrogate (``"\\ud800"`` in JSON)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


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
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = column_names(name, next(reader))
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(f"{name}:1: cannot read the header ({exc})", file=name) from exc
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                message = f"{exc}; a field this long is usually an unclosed quote"
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

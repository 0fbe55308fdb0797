"""JSON and JSON Lines into :class:`RawRow` streams: one row per line (or per element of a JSON array).

A bad line is an error row with a reason code (``bad_json``, ``non_utf8``, ``not_an_object``, ``duplicate_key``,
``too_deep``, ``line_too_long``), never an exception: the ingest core and the suite loader reject it by file and
line, and the good rows still land. Lines are read with a length bound, split on ``"\\n"`` only.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cotforge import input_paths
from cotforge.ingest.raw_rows import RawRow
from cotforge.input_paths import read_whole_file


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
    if lineno == 1:
        line = line.removeprefix(codecs.BOM_UTF8)
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

"""Reading an evaluation suite's files into row tables: JSONL, JSON, CSV, TSV, Parquet, a ``datasets`` folder
saved with ``save_to_disk``, a folder of such files, or a Hub id (through ``datasets.load_dataset``).

Rows come from :mod:`cotforge.ingest.sources`' readers, so a bad line is an error row (rejected downstream), never a
crash; only a source that cannot be opened at all raises :class:`SuiteError`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotforge.errors import SuiteError
from cotforge.ingest.raw_rows import RawRow
from cotforge.ingest.sources import read_csv_rows, read_jsonl_rows, read_parquet_rows

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
_DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


@dataclass(frozen=True)
class SuiteTable:
    """One file's (or one dataset split's) rows, with the names a reject or an id uses."""

    name: str  # the file (or dataset[split]) a reject names
    stem: str
    rows: list[RawRow]
    split: str | None = None
    artifact: bool = False  # a JailbreakBench artifact JSON: its rows are the `jailbreaks` entries


# --- reading ------------------------------------------------------------------------------------------------


def _read_tsv_rows(path: Path) -> Iterator[RawRow]:
    """TSV with a header, like :func:`cotforge.ingest.sources.read_csv_rows` (ragged and non-UTF-8 rows are errors)."""
    name = str(path)
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    for fields in reader:
        if not fields or all(not f.strip() for f in fields):
            continue
        raw = "\t".join(fields).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        if any("\udc80" <= ch <= "\udcff" for f in fields for ch in f):
            yield RawRow(name, reader.line_num, None, ("non_utf8", "not valid UTF-8"), raw)
        elif len(fields) != len(header):
            message = f"{len(fields)} fields where the header has {len(header)}; check quoting and tabs"
            yield RawRow(name, reader.line_num, None, ("malformed_row", message), raw)
        else:
            yield RawRow(name, reader.line_num, dict(zip(header, fields, strict=True)))


def _read_json(path: Path) -> SuiteTable:
    """A ``.json`` file: a JailbreakBench artifact, a JSON array of rows, or JSON Lines."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return SuiteTable(str(path), path.stem, list(read_jsonl_rows(path)))
    if isinstance(document, dict) and isinstance(document.get("jailbreaks"), list):
        parameters = document.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        extra = {"method": parameters.get("method"), "model": parameters.get("model")}
        rows = [
            RawRow(str(path), i, {**extra, **entry})
            if isinstance(entry, dict)
            else RawRow(str(path), i, None, ("not_an_object", "jailbreaks entry is not an object"), entry)
            for i, entry in enumerate(document["jailbreaks"], start=1)
        ]
        return SuiteTable(str(path), path.stem, rows, artifact=True)
    if isinstance(document, list):
        rows = [
            RawRow(str(path), i, item)
            if isinstance(item, dict)
            else RawRow(str(path), i, None, ("not_an_object", "expected a JSON object per entry"), item)
            for i, item in enumerate(document, start=1)
        ]
        return SuiteTable(str(path), path.stem, rows)
    if isinstance(document, dict):  # one JSON object: a one-row file
        return SuiteTable(str(path), path.stem, [RawRow(str(path), 1, document)])
    return SuiteTable(str(path), path.stem, list(read_jsonl_rows(path)))


def _read_file(path: Path) -> SuiteTable:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path)
    reader = {
        ".jsonl": read_jsonl_rows,
        ".csv": read_csv_rows,
        ".tsv": _read_tsv_rows,
        ".parquet": read_parquet_rows,
    }[suffix]
    return SuiteTable(str(path), path.stem, list(reader(path)))


def _dataset_tables(dataset: Any, where: str, split: str | None) -> list[SuiteTable]:
    """The rows of a loaded ``Dataset`` or of one split of a ``DatasetDict``."""
    import datasets

    if isinstance(dataset, datasets.DatasetDict):
        splits = list(dataset)
        if split is None and len(splits) == 1:
            split = splits[0]
        if split not in dataset:
            raise SuiteError(
                f"{where}: {'no split ' + repr(split) if split else 'several splits'}; "
                f"pick one of {', '.join(splits)} with `split:` (--split)",
                file=where,
            )
        dataset = dataset[split]
    name = f"{where}[{split}]" if split else where
    rows = [RawRow(name, i, row) for i, row in enumerate(dataset, start=1)]
    return [SuiteTable(name, Path(where).name, rows, split=split)]


def _read_hub(spec: str, split: str | None, subset: str | None) -> list[SuiteTable]:
    import datasets

    try:
        dataset = datasets.load_dataset(spec, subset, split=split)
    except Exception as exc:
        raise SuiteError(
            f"{spec}: not a local file or folder, and the Hub dataset could not be loaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}): no network / not in the "
            "local cache: download it where there is a network "
            "(`datasets.load_dataset(...).save_to_disk(DIR)`) and pass the folder",
            file=spec,
        ) from exc
    return _dataset_tables(dataset, spec, split)


def read_suite_tables(spec: str, split: str | None = None, subset: str | None = None) -> list[SuiteTable]:
    """Every table a suite path names: one file, a saved dataset, a folder of files, or a Hub id."""
    path = Path(spec)
    if path.is_file():
        if path.suffix.lower() not in FILE_SUFFIXES:
            raise SuiteError(
                f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(FILE_SUFFIXES)}",
                file=path,
            )
        return [_read_file(path)]
    if path.is_dir():
        if any((path / marker).exists() for marker in _DATASET_MARKERS):
            import datasets

            try:
                dataset = datasets.load_from_disk(str(path))
            except Exception as exc:
                raise SuiteError(
                    f"{path}: cannot load as a `datasets` folder ({type(exc).__name__}: {exc}); "
                    "save it again with `save_to_disk`",
                    file=path,
                ) from exc
            return _dataset_tables(dataset, str(path), split)
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FILE_SUFFIXES)
        if not files:
            raise SuiteError(f"{path}: no suite files ({', '.join(FILE_SUFFIXES)}) in this folder", file=path)
        return [_read_file(p) for p in files]
    if path.suffix.lower() in FILE_SUFFIXES or spec.startswith((".", "/", "~")):
        raise SuiteError(f"{spec}: file not found", file=spec)
    return _read_hub(spec, split, subset)

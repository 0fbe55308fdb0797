"""Reading an evaluation suite's files into row tables: JSONL, JSON, CSV, TSV, Parquet, a ``datasets`` folder
saved with ``save_to_disk``, a folder of such files, or a Hub id (through ``datasets.load_dataset``).

Rows come from :mod:`cotforge.ingest.sources`' readers, so a bad line is an error row (rejected downstream), never a
crash; only a source that cannot be used at all raises :class:`SuiteError` (or, for a path that is no regular file
or folder, :class:`~cotforge.input_paths.InputPathError`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotforge.errors import SuiteError
from cotforge.ingest.json_rows import marked_repeats, object_row, read_jsonl_rows
from cotforge.ingest.raw_rows import RawRow
from cotforge.ingest.sources import FILE_READERS, SourceError, looks_like_path, refuse_other_encodings
from cotforge.input_paths import COMPRESSED, InputPathError, check_input_path, read_whole_file

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


def _read_json(path: Path) -> SuiteTable:
    """A ``.json`` file: a JailbreakBench artifact, a JSON array of rows, or JSON Lines."""
    try:
        document = json.loads(read_whole_file(path).decode("utf-8-sig"), object_pairs_hook=marked_repeats)
    except (UnicodeDecodeError, ValueError, RecursionError):  # not one JSON document: JSON Lines
        return SuiteTable(str(path), path.stem, list(read_jsonl_rows(path)))
    name = str(path)
    if isinstance(document, dict) and isinstance(document.get("jailbreaks"), list):
        parameters = document.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        extra = {"method": parameters.get("method"), "model": parameters.get("model")}
        rows = []
        for i, entry in enumerate(document["jailbreaks"], start=1):
            row = object_row(
                name,
                i,
                entry,
                None if isinstance(entry, dict) else entry,
                "jailbreaks entry is not an object",
            )
            rows.append(row if row.data is None else RawRow(name, i, {**extra, **row.data}))
        return SuiteTable(name, path.stem, rows, artifact=True)
    if isinstance(document, list):
        rows = [
            object_row(name, i, item, item, "expected a JSON object per entry")
            for i, item in enumerate(document, 1)
        ]
        return SuiteTable(name, path.stem, rows)
    if isinstance(document, dict):  # one JSON object: a one-row file
        return SuiteTable(name, path.stem, [object_row(name, 1, document, None, "")])
    return SuiteTable(name, path.stem, list(read_jsonl_rows(path)))


def _read_file(path: Path) -> SuiteTable:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path)
    try:
        if suffix != ".parquet":
            refuse_other_encodings(path)
        return SuiteTable(str(path), path.stem, list(FILE_READERS[suffix](path)))
    except SourceError as exc:  # a header naming one column twice: a suite problem like any other
        raise SuiteError(str(exc), file=path) from exc


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


def _checked(spec: str | Path, folder: bool = True) -> Path:
    """:func:`check_input_path` for a suite: its refusal is a :class:`SuiteError`, as every suite problem is."""
    try:
        return check_input_path(spec, "evaluation suite", folder=folder)
    except InputPathError as exc:
        raise SuiteError(str(exc), file=exc.file) from exc


def _folder_files(path: Path) -> list[Path]:
    """The suite files of a folder; one that is not a regular file (a FIFO, a device link) is refused."""
    named = sorted(p for p in path.iterdir() if p.suffix.lower() in FILE_SUFFIXES)
    files = [_checked(p, folder=False) for p in named]
    if not files:
        packed = sorted(p.name for p in path.iterdir() if p.suffix.lower() in COMPRESSED)
        also = f"; compressed files ({', '.join(packed[:3])}) must be unpacked first" if packed else ""
        raise SuiteError(
            f"{path}: no suite files ({', '.join(FILE_SUFFIXES)}) in this folder{also}", file=path
        )
    return files


def read_suite_tables(spec: str, split: str | None = None, subset: str | None = None) -> list[SuiteTable]:
    """Every table a suite path names: one file, a saved dataset, a folder of files, or a Hub id.

    A name that is a path (it exists, or looks like a file) must be a regular file or a folder: a FIFO, a device,
    stdin (``-``) or a compressed file is refused before anything is read.
    """
    if spec == "-" or looks_like_path(spec):
        path = _checked(spec)
    else:
        return _read_hub(spec, split, subset)
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
        return [_read_file(p) for p in _folder_files(path)]
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise SuiteError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(FILE_SUFFIXES)}",
            file=path,
        )
    return [_read_file(path)]

"""Run folders: where stages read their inputs and write their outputs, atomically.

A whole-file output is written to a temporary file in the same folder and renamed over the target, so a
crash leaves either the old file or the new one, never half of one. Streaming outputs (generation, sampling)
go through :class:`AppendLog`, which fsyncs each batch and, on reopen, cuts a torn last line left by a kill.
"""

from __future__ import annotations

import codecs
import gc
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO, TypeVar

from pydantic import BaseModel, ValidationError

from cotforge.errors import OutputWriteError, StageInputError

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T", bound=BaseModel)


class RunFolderError(StageInputError):
    """A run-folder input is missing or unreadable; the message says which file and what to do."""


class DuplicateRecordError(RunFolderError):
    """Two lines of one run file hold different records under one id; the message names both lines."""


class RunFiles:
    """The file names stages agree on, relative to the run folder."""

    PROMPTS = "prompts.jsonl"
    PROMPT_REJECTS = "prompts.rejects.jsonl"
    PROMPT_CLUSTERS = "prompts.clusters.jsonl"
    SAMPLES = "samples.jsonl"
    GENERATE_REJECTS = "generate.rejects.jsonl"
    ACCEPTED = "accepted.jsonl"
    VERDICTS = "verdicts.jsonl"
    VALIDATE_REJECTS = "validate.rejects.jsonl"
    REVIEWED = "reviewed.jsonl"
    REVIEW_VERDICTS = "review.verdicts.jsonl"
    REVIEW_DECISIONS = "review.decisions.jsonl"
    REVIEW_REJECTS = "review.rejects.jsonl"
    AUGMENTED = "augmented.jsonl"
    CANDIDATES = "candidates.jsonl"
    JUDGMENTS = "judgments.jsonl"
    JUDGE_REJECTS = "judge.rejects.jsonl"
    AUGMENT_REJECTS = "augment.rejects.jsonl"
    SAMPLE_REJECTS = "sample.rejects.jsonl"
    PAIRS = "pairs.jsonl"
    PAIRS_TRL = "pairs.trl.jsonl"
    PAIRS_REJECTS = "pairs.rejects.jsonl"
    PAIRS_SCORES = "pairs.scores.jsonl"
    MODELS = "models"
    TRAIN_SFT_REJECTS = "train-sft.rejects.jsonl"
    TRAIN_AWDPO_REJECTS = "train-awdpo.rejects.jsonl"
    CONTAMINATION_REJECTS = "contamination.rejects.jsonl"
    EVAL_DIR = "eval"
    EVAL_RESULTS = "eval/results.json"
    EVAL_OUTPUTS = "eval/outputs.jsonl"
    EVAL_REJECTS = "eval/rejects.jsonl"
    EVAL_CELLS = "eval/cells.json"
    EVAL_COMPARISON = "eval/comparison.json"
    EVAL_RATES_PLOT = "eval/rates_by_suite.png"
    EVAL_TACTICS_PLOT = "eval/asr_by_tactic.png"
    EVAL_UTILITY = "eval/utility"
    RELEASE = "release"
    MANIFESTS = "manifests"
    CACHE = "cache.sqlite"
    USAGE = "usage.jsonl"
    # Every stage's rejects file (the release and the report read them all).
    REJECTS_FILES = (
        PROMPT_REJECTS,
        GENERATE_REJECTS,
        VALIDATE_REJECTS,
        REVIEW_REJECTS,
        AUGMENT_REJECTS,
        SAMPLE_REJECTS,
        JUDGE_REJECTS,
        PAIRS_REJECTS,
        TRAIN_SFT_REJECTS,
        TRAIN_AWDPO_REJECTS,
        CONTAMINATION_REJECTS,
    )


def _write_failed(path: Path, exc: OSError, kept: str) -> OutputWriteError:
    return OutputWriteError(
        f"{path}: could not write ({exc.strerror or exc}); {kept}. Free space (or fix the folder's permissions) "
        "and re-run the same command",
        file=path,
    )


@contextmanager
def _replaced(path: Path) -> Iterator[TextIO]:
    """A text file that replaces ``path`` whole when the block ends (temp file, fsync, rename), or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_failed(path, exc, "the previous file, if any, is unchanged") from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and rename."""
    with _replaced(path) as fh:
        fh.write(text)


def _line_of(record: BaseModel | dict[str, Any]) -> str:
    if isinstance(record, BaseModel):
        return record.model_dump_json()
    return json.dumps(record, ensure_ascii=False, default=str)


def atomic_write_jsonl(path: Path, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write records as JSON lines atomically; returns how many were written."""
    count = 0
    with _replaced(path) as fh:
        for record in records:
            fh.write(_line_of(record))
            fh.write("\n")
            count += 1
    return count


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic records.

    Reading 100k records otherwise triggers repeated full collections that cost ~4x the parsing itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_jsonl(path: Path, model: type[T]) -> Iterator[T]:
    """Read a run-folder JSONL file of ``model`` records.

    These files are written by cotforge, so a bad line is a corrupted run: raise with file and line.
    Parsing each line with pydantic directly is ~1.7x faster than `jsonlines` + ``model_validate``
    (``make bench-jsonl``), so run-folder files skip `jsonlines`; user-facing files (ingest sources) use it.
    """
    if not path.exists():
        raise RunFolderError(f"{path}: not found; run the stage that writes it first")
    key = getattr(model, "record_key", None)
    key_name = key if key is None or isinstance(key, str) else " and ".join(key)
    seen: dict[Any, tuple[int, T]] = {}
    # Bytes split on "\n" only: model text may hold U+2028 or a bare "\r", which text mode would split on.
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1:
                line = line.removeprefix(codecs.BOM_UTF8)  # a byte-order mark an editor added on saving
            if not line.strip():
                continue
            try:
                record = model.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "record"
                # The value itself when it is short: "≤ 1" alone does not say the score was NaN.
                got = repr(first.get("input")) if first["loc"] else ""
                got = f", got {got}" if got and len(got) <= 60 else ""
                raise RunFolderError(
                    f"{path}:{lineno}: not a valid {model.__name__} ({where}: {first['msg']}{got}); "
                    "fix or remove the line, or re-run the stage that wrote the file",
                    file=path,
                    line=lineno,
                ) from None
            if key is not None:
                value = (
                    getattr(record, key) if isinstance(key, str) else tuple(getattr(record, k) for k in key)
                )
                first_seen = seen.get(value)
                if first_seen is not None:
                    if first_seen[1] == record:
                        continue  # the same record written twice is one record
                    raise DuplicateRecordError(
                        f"{path}:{first_seen[0]} and line {lineno}: two different {model.__name__} records "
                        f"with {key_name} {value!r}; a run file holds one record per {key_name}: delete the wrong "
                        "line, or re-run the stage that wrote the file",
                        file=path,
                        line=lineno,
                        record_id=value if isinstance(value, str) else "/".join(map(str, value)),
                    )
                seen[value] = (lineno, record)
            yield record


def folder_files(folder: Path) -> list[Path]:
    """The files under an output folder, sorted, less a ``manifests/`` folder inside it: the bookkeeping of what
    is later done with the folder (a release's push record), not part of what its stage wrote."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).parts[0] != RunFiles.MANIFESTS
    )


def special_file(path: Path) -> str | None:
    """What ``path`` is when it is neither a regular file nor a folder (a device, a FIFO, a socket: reading one
    may never end), following symlinks; ``None`` otherwise (or when it does not exist)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (streamed)."""
    return file_digest(path)[0]


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 of a file's bytes and its number of lines (``\\n`` counted; a last line without one counts)."""
    digest = hashlib.sha256()
    lines = 0
    last = b"\n"
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
    return digest.hexdigest(), lines + (last != b"\n")


def tree_sha256(root: Path, names: Iterable[str]) -> str:
    """One SHA-256 over the files under each of ``names`` (relative to ``root``): their paths and contents."""
    digest = hashlib.sha256()
    for name in names:
        base = root / name
        for path in sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def content_sha256(path: Path, root: Path) -> str | None:
    """A file's SHA-256, a folder's :func:`tree_sha256`, or ``None`` when ``path`` is neither."""
    if path.is_file():
        return file_sha256(path)
    if path.is_dir():
        return tree_sha256(root, [os.path.relpath(path, root)])
    return None


class AppendLog:
    """An append-only JSONL file that survives being killed mid-write.

    On open, a last line without its newline (torn by a kill) is cut off; :meth:`append` writes whole lines
    and :meth:`flush` fsyncs, so after a crash every line in the file is complete.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = self._cut_torn_tail(path)
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    @staticmethod
    def _cut_torn_tail(path: Path) -> int:
        if not path.exists() or path.stat().st_size == 0:
            return 0
        with path.open("rb+") as fh:
            data = fh.read()
            if data.endswith(b"\n"):
                return 0
            keep = data.rfind(b"\n") + 1
            fh.truncate(keep)
            return len(data) - keep

    def append(self, record: BaseModel | dict[str, Any]) -> None:
        try:
            self._fh.write(_line_of(record) + "\n")
        except OSError as exc:
            raise self._failed(exc) from exc

    def flush(self, durable: bool = True) -> None:
        """Hand buffered lines to the OS (enough to survive a kill); ``durable`` also fsyncs (power loss)."""
        try:
            self._fh.flush()
            if durable:
                os.fsync(self._fh.fileno())
        except OSError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: OSError) -> OutputWriteError:
        # A full disk can stop a write mid-line: drop the unwritten buffer and cut the file back to its last
        # whole line, so the file stays readable and a re-run resumes after the lines that made it.
        with suppress(OSError):
            self._fh.close()
        self._cut_torn_tail(self.path)
        return _write_failed(self.path, exc, "every complete line before it is kept")

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            self._fh.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunFolder:
    """A run folder: paths of the standard files and typed reads/writes of them."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._digests: dict[Path, tuple[tuple[int, int, int], tuple[str, int]]] = {}

    def path(self, name: str) -> Path:
        return self.root / name

    def digest(self, path: Path) -> tuple[str, int]:
        """:func:`file_digest` of ``path``, remembered while its size, modification time and inode stay the same.

        The integrity check, the running manifest and the final manifest all hash the same inputs: once is enough.
        """
        stat = path.stat()
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        known = self._digests.get(path)
        if known is not None and known[0] == signature:
            return known[1]
        value = file_digest(path)
        self._digests[path] = (signature, value)
        return value

    def ensure(self) -> RunFolder:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def read(self, name: str, model: type[T]) -> list[T]:
        with gc_paused():
            return list(read_jsonl(self.path(name), model))

    def write(self, name: str, records: Iterable[BaseModel | dict[str, Any]]) -> int:
        return atomic_write_jsonl(self.path(name), records)

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def frame(self, name: str) -> pd.DataFrame:
        """A JSONL file of the run as a pandas DataFrame (see :func:`cotforge.runfolder.frames.records_frame`)."""
        from cotforge.runfolder.frames import records_frame

        return records_frame(self.path(name))

    def require(self, name: str, stage_hint: str) -> Path:
        """The path of an input that must exist, or an error naming the stage that writes it."""
        p = self.path(name)
        if not p.exists():
            raise RunFolderError(f"{p}: not found; run `cotforge {stage_hint} --run {self.root}` first")
        return p

    def manifest_path(self, stage: str) -> Path:
        return self.root / RunFiles.MANIFESTS / f"{stage}.json"

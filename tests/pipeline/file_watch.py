"""Which run files each stage touches, watched through Python's audit hooks (not listed by hand).

:class:`FileWatch` records, while a stage runs, every file the process opens, renames, removes or connects to
(SQLite) under a run folder. :func:`undeclared` maps each path to the run-file name it stands for (an atomic
write's temp file is its target, SQLite's journal is the database, a file inside a declared folder is that
folder) and returns those the stage's declaration does not name.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cotforge.runfolder import RunFiles
from cotforge.runfolder.declaration import MODEL_CALL_FILES, StageDeclaration

EVENTS = {"open", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "sqlite3.connect", "os.truncate"}
_TEMP = re.compile(r"^\.(?P<name>.+)\.[^./]+\.tmp$")
_SWAPPED = re.compile(r"^\.(?P<name>[^/]+)\.(old-\d+|[^./]+\.tmp)$")
_SQLITE_SIDE = re.compile(r"^(?P<name>.+)-(wal|shm|journal)$")
# Bookkeeping any stage may touch: its manifest and the others' (checked before reading), server logs.
ANY_STAGE = (RunFiles.MANIFESTS, "logs")


def paths_of(event: str, args: tuple[object, ...]) -> list[str]:
    """The file paths an audit event names (those that are paths)."""
    count = 2 if event == "os.rename" else 1
    return [os.fspath(a) for a in args[:count] if isinstance(a, str | bytes | os.PathLike)]  # type: ignore[misc]


@dataclass
class FileWatch:
    """Collects (stage, run-relative path) for every watched event while :attr:`stage` is set."""

    root: Path
    stage: str | None = None
    seen: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if self.stage is None or event not in EVENTS:
            return
        for raw in paths_of(event, args):
            path = os.path.abspath(raw if isinstance(raw, str) else raw.decode(errors="replace"))
            if path.startswith(str(self.root) + os.sep):
                with self._lock:
                    self.seen.add((self.stage, os.path.relpath(path, self.root)))


def run_file_name(relative: str) -> str:
    """The run-file name a touched path stands for (temp files, swapped folders and journals mapped back)."""
    parts = Path(relative).parts
    for i, part in enumerate(parts):
        folder = "/".join(parts[:i])
        for pattern in (_SWAPPED, _TEMP):
            found = pattern.match(part)
            if found:
                return "/".join(p for p in (folder, found["name"]) if p)
    found = _SQLITE_SIDE.match(relative)
    return found["name"] if found else relative


def allowed_names(declaration: StageDeclaration, config: object) -> set[str]:
    names = {*declaration.all_inputs(config), *declaration.all_outputs(config), *ANY_STAGE}
    if declaration.calls_models:
        names |= set(MODEL_CALL_FILES)
    return names


def undeclared(touched: Iterable[str], allowed: set[str]) -> list[str]:
    """The touched run files (mapped by :func:`run_file_name`) that no allowed name covers."""
    out = set()
    for relative in touched:
        name = run_file_name(relative)
        if not any(name == a or name.startswith(a.rstrip("/") + "/") for a in allowed):
            out.add(name)
    return sorted(out)


def install(watch: FileWatch) -> None:
    """Add ``watch``'s hook to this process (audit hooks cannot be removed: :attr:`FileWatch.stage` gates it)."""
    sys.addaudithook(watch.hook)

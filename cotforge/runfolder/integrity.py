"""Run-folder integrity: a stage reads a run file only while the manifest that wrote it still vouches for it.

Every stage manifest records its outputs' SHA-256, their records (JSONL rows) and the run's id. Before a stage
reads, :func:`verify_inputs` finds for each input the newest manifest that lists it and refuses the file when

- it is **unfinished**: its writer is still running (or was killed, or the folder was copied mid-run), or its
  last run failed after changing it;
- it belongs to **another run**: its manifest carries another folder's run id;
- it **changed** since: its content is not what the manifest recorded.

A file no manifest lists (a hand-made input; a folder from before manifests listed outputs) is read as it is.
A stage reading back its own unfinished output (resuming it) is not refused. ``--accept-changed FILE`` records
the file's present content in its writer's manifest (:class:`~cotforge.schemas.AcceptedChange`), and the
check passes for exactly that content from then on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from cotforge.errors import ConfigError, StageInputError
from cotforge.runfolder.files import RunFolder, atomic_write_text, folder_files
from cotforge.runfolder.identity import StageManifest, read_manifest, read_run_id, stage_manifests
from cotforge.runfolder.stage_names import canonical_stage, rerun_command
from cotforge.schemas import AcceptedChange

# Files the user said to take as they are (``--accept-changed``), for the stages run in this context.
_ACCEPTED: ContextVar[tuple[str, ...]] = ContextVar("cotforge_accept_changed", default=())

Kind = Literal["changed", "unfinished", "another run"]


class RunFileChangedError(StageInputError):
    """An input its manifest no longer vouches for: changed since written, another run's, or unfinished."""


@contextmanager
def accepting_changes(files: Iterable[str]) -> Iterator[None]:
    """Stages opened inside this block accept ``files`` (run-relative names or paths) as they are."""
    token = _ACCEPTED.set(tuple(files))
    try:
        yield
    finally:
        _ACCEPTED.reset(token)


def accepted_changes() -> tuple[str, ...]:
    """The files ``--accept-changed`` named for the stage being run."""
    return _ACCEPTED.get()


def run_file_name(folder: RunFolder, value: str) -> str:
    """``value`` (a file's name in the run folder, or a path to it) as a run-relative name."""
    path = Path(value).expanduser()
    if value and not path.is_absolute() and folder.path(value).exists():
        return PurePosixPath(value).as_posix().strip("/")
    if path.is_absolute() or path.exists():
        try:
            return path.resolve().relative_to(folder.root.resolve()).as_posix()
        except ValueError:
            raise ConfigError(
                f"--accept-changed {value}: not a file of the run folder {folder.root}; give its name in the run "
                "folder (such as judgments.jsonl)"
            ) from None
    return PurePosixPath(value).as_posix().strip("/")


@dataclass(frozen=True)
class Problem:
    """Why one input is not vouched for, and the content found (to accept it by)."""

    name: str
    kind: Kind
    detail: str
    writer: StageManifest
    sha256: str
    rows: int | None


def _under(name: str, entry: str) -> bool:
    return (
        entry == name or entry.startswith(name.rstrip("/") + "/") or name.startswith(entry.rstrip("/") + "/")
    )


def writer_of(manifests: list[StageManifest], name: str) -> tuple[StageManifest, dict[str, str], bool] | None:
    """The newest manifest listing ``name`` (or files under it), what it recorded for them, and whether it says
    they are unfinished."""
    for found in reversed(manifests):
        m = found.manifest
        recorded = {k: v for k, v in m.outputs.items() if _under(name, k)}
        unfinished = any(_under(name, u) for u in m.unfinished or [])
        if recorded or unfinished:
            return found, recorded, unfinished
    return None


def _contents(folder: RunFolder, name: str) -> tuple[dict[str, str], int | None]:
    """SHA-256 of the file ``name`` or of each file under the folder ``name`` (run-relative keys), and a file's
    line count."""
    path = folder.path(name)
    if path.is_file():
        sha, lines = folder.digest(path)
        return {name: sha}, lines
    inner = folder_files(path)
    return {f"{name.rstrip('/')}/{p.relative_to(path).as_posix()}": folder.digest(p)[0] for p in inner}, None


def _difference(
    name: str, recorded: dict[str, str], current: dict[str, str], rows: int | None, written_rows: int | None
) -> str:
    if set(recorded) == {name} and set(current) == {name}:
        if rows is not None and written_rows is not None and rows != written_rows:
            return f"it holds {rows} records where {written_rows} were written"
        return f"its content differs (SHA-256 {recorded[name][:12]}… written, {current[name][:12]}… now)"
    changed = sorted(k for k in recorded.keys() & current.keys() if recorded[k] != current[k])
    missing = sorted(recorded.keys() - current.keys())
    added = sorted(current.keys() - recorded.keys())
    labelled = (("changed:", changed), ("missing:", missing), ("added:", added))
    return "; ".join(
        f"{label} {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}" for label, keys in labelled if keys
    )


def find_problem(
    folder: RunFolder, stage: str, name: str, manifests: list[StageManifest], run_id: str | None
) -> Problem | None:
    """What keeps input ``name`` of ``stage`` from being read as vouched for, or ``None``."""
    found = writer_of(manifests, name)
    if found is None:
        return None
    writer, recorded, unfinished = found
    m = writer.manifest
    finished = m.status != "running" and not unfinished
    if writer.stage == canonical_stage(stage) and not finished:
        return None  # the stage resumes its own work
    current, rows = _contents(folder, name)
    content = (
        current[name]
        if set(current) == {name}
        else hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()
    )
    if any(a.file == name and a.sha256 == content for a in m.accepted_changes):
        return None
    problem: tuple[Kind, str] | None = None
    if not finished:
        problem = (
            "unfinished",
            (
                f"its manifest says `{writer.stage}` is running since {m.started_at:%Y-%m-%d %H:%M:%S} (still "
                "running, killed, or the folder was copied while it ran)"
                if m.status == "running"
                else f"the last `{writer.stage}` run failed after writing it ({(m.error or 'no error recorded')[:160]})"
            ),
        )
    elif m.run_id and run_id and m.run_id != run_id:
        problem = "another run", f"{writer.path.name} names run {m.run_id}; this folder is run {run_id}"
    elif recorded != current:
        detail = _difference(name, recorded, current, rows, m.rows.get(name))
        problem = (
            "changed",
            f"{detail} (written by `{writer.stage}` at {m.finished_at or m.started_at:%Y-%m-%d %H:%M:%S})",
        )
    if problem is None:
        return None
    return Problem(name, problem[0], problem[1], writer, content, rows)


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*.tmp"))


def describe(folder: RunFolder, stage: str, problem: Problem) -> str:
    """One line: the file, what is wrong with it, the command that rebuilds it, and how to accept it."""
    path = folder.path(problem.name)
    rerun = rerun_command(problem.writer.stage, folder.root)
    leftover = _leftovers(path)
    cut = f"; a leftover {leftover[0]} shows a write was cut off" if leftover else ""
    verb = {
        "changed": "changed since it was written",
        "unfinished": "is unfinished",
        "another run": "belongs to another run",
    }[problem.kind]
    # An unfinished file is finished by running its stage again (it resumes); any other is rebuilt from
    # scratch: a stage that appends to its output would otherwise keep what is there.
    fix = (
        f"Finish it with `{rerun}`"
        if problem.kind == "unfinished"
        else f"Delete it and run `{rerun}` to rebuild it"
    )
    return (
        f"{stage}: {path} {verb}: {problem.detail}{cut}. {fix}, or, to use it as it is, pass --accept-changed "
        f"{problem.name} (recorded in {problem.writer.path.relative_to(folder.root)})"
    )


def record_acceptance(folder: RunFolder, problem: Problem, by: str) -> None:
    """Record ``problem``'s file content as accepted in its writer's manifest."""
    path = problem.writer.path
    manifest = read_manifest(path)
    if manifest is None:  # only another tool's file reads as None, and such a file vouches for nothing
        return
    change = AcceptedChange(
        file=problem.name, sha256=problem.sha256, rows=problem.rows, problem=problem.kind, accepted_by=by
    )
    kept = [a for a in manifest.accepted_changes if a.file != problem.name]
    updated = manifest.model_copy(update={"accepted_changes": [*kept, change]})
    atomic_write_text(path, updated.model_dump_json(indent=2) + "\n")


def verify_inputs(folder: RunFolder, stage: str, names: Iterable[str], accept: Collection[str] = ()) -> None:
    """Refuse (:class:`RunFileChangedError`) any present input in ``names`` its manifest does not vouch for.

    ``accept`` (run-relative names or paths, from ``--accept-changed``) are taken as they are and recorded in
    their writers' manifests; naming a file that is not among ``names`` is a :class:`ConfigError`.
    """
    names = list(dict.fromkeys(names))
    wanted = {run_file_name(folder, a): a for a in accept}
    unknown = [given for name, given in wanted.items() if name not in names]
    if unknown:
        raise ConfigError(
            f"--accept-changed {unknown[0]}: not an input of `{canonical_stage(stage)}` (it reads: "
            f"{', '.join(names) or 'no run files'})",
            stage=stage,
        )
    present = [n for n in names if folder.path(n).exists()]
    manifests = stage_manifests(folder) if present else []
    if not manifests:
        return
    run_id = read_run_id(folder)
    refused: list[Problem] = []
    for name in present:
        problem = find_problem(folder, stage, name, manifests, run_id)
        if problem is None:
            continue
        if name in wanted:
            record_acceptance(folder, problem, by=canonical_stage(stage))
        else:
            refused.append(problem)
    if refused:
        more = f" (also: {', '.join(p.name for p in refused[1:])})" if len(refused) > 1 else ""
        raise RunFileChangedError(
            describe(folder, stage, refused[0]) + more, stage=stage, file=folder.path(refused[0].name)
        )


def accept_file(folder: RunFolder, name: str, by: str) -> Problem | None:
    """Record run file ``name`` as accepted in its writer's manifest if the check would refuse it; the problem
    accepted, or ``None`` when there was none (a pipeline's ``--accept-changed``)."""
    if not folder.path(name).exists():
        raise ConfigError(f"--accept-changed {name}: {folder.path(name)} does not exist")
    manifests = stage_manifests(folder)
    problem = find_problem(folder, "", name, manifests, read_run_id(folder))
    if problem is not None:
        record_acceptance(folder, problem, by=by)
    return problem

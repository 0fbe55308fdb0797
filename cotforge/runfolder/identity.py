"""Who wrote what in a run folder: the run's id and the stage manifests under ``manifests/``.

The run id lives in ``manifests/run.json``; the first stage that writes a manifest in a folder makes it. A copied
folder keeps it (a copy is the same run); a file's manifest carried over from another folder keeps that folder's
id (it is another run's file). Manifests are read tolerantly: keys a newer cotforge wrote are kept; a manifest
that cannot be read at all is an error naming it, raised before any output is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from cotforge.errors import OutputWriteError
from cotforge.runfolder.files import RunFiles, RunFolder, RunFolderError
from cotforge.runfolder.stage_names import LEGACY_STAGE_NAMES, canonical_stage, rerun_command
from cotforge.schemas import RunManifest, utc_now

RUN_IDENTITY = "run.json"
PIPELINE_STATE = "pipeline.json"
# JSON files under manifests/ that are not stage manifests.
NOT_STAGE_MANIFESTS = frozenset({RUN_IDENTITY, PIPELINE_STATE})


class RunIdentity(BaseModel):
    """``manifests/run.json``: the run folder's id, made once."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    created_at: AwareDatetime


def new_run_id() -> str:
    """A readable, unique run id: UTC time of creation and 8 random hex digits."""
    return f"run-{utc_now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def identity_path(folder: RunFolder) -> Path:
    return folder.path(RunFiles.MANIFESTS) / RUN_IDENTITY


def read_run_id(folder: RunFolder) -> str | None:
    """The folder's run id, or ``None`` when it has none yet (a new folder, or one from before run ids)."""
    path = identity_path(folder)
    if not path.is_file():
        return None
    try:
        return RunIdentity.model_validate_json(path.read_bytes()).run_id
    except (ValidationError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not a run identity"
        raise RunFolderError(
            f"{path}: {why}; delete it and cotforge takes the run's id back from its stage manifests",
            file=path,
        ) from None


def ensure_run_id(folder: RunFolder, manifests: list[StageManifest] | None = None) -> str:
    """The folder's run id, made now if it has none: taken from the oldest stage manifest that has one (the
    identity file was lost), else new."""
    known = read_run_id(folder)
    if known is not None:
        return known
    stamped = sorted(
        (m.manifest for m in (manifests if manifests is not None else stage_manifests(folder))),
        key=lambda m: m.started_at,
    )
    run_id = next((m.run_id for m in stamped if m.run_id), None) or new_run_id()
    identity = RunIdentity(run_id=run_id, created_at=utc_now())
    path = identity_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(identity.model_dump_json(indent=2) + "\n")
        # A link, not a rename: of two processes making the id at once (ranks of one training), one wins and
        # the other reads its id.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    except OSError as exc:
        raise OutputWriteError(
            f"{path}: could not write the run's id ({exc.strerror or exc})", file=path
        ) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return read_run_id(folder) or run_id


@dataclass(frozen=True)
class StageManifest:
    """A stage manifest and the file it was read from."""

    path: Path
    manifest: RunManifest

    @property
    def stage(self) -> str:
        return canonical_stage(self.manifest.stage)


def _unreadable(path: Path, why: str) -> RunFolderError:
    stage = canonical_stage(path.stem)
    return RunFolderError(
        f"{path}: not a readable stage manifest ({why}): half-copied, edited, or written by another version of "
        f"cotforge. Run the stage again to rewrite it (`{rerun_command(stage, path.parent.parent)}`), or move the "
        f"file out of {RunFiles.MANIFESTS}/",
        file=path,
    )


def read_manifest(path: Path, foreign_ok: bool = False) -> RunManifest | None:
    """The manifest in ``path``; keys from a newer cotforge are kept.

    A file that cannot be read (bad bytes, cut-off JSON, wrong types) is a :class:`RunFolderError` naming it.
    With ``foreign_ok`` a JSON object that is not a stage manifest at all (no ``stage`` key: another tool's
    file) is ``None``.
    """
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _unreadable(path, f"not JSON: {exc}") from None
    if foreign_ok and not (isinstance(data, dict) and "stage" in data):
        return None
    try:
        return RunManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise _unreadable(path, f"{where}: {first['msg']}") from None


def stage_manifests(folder: RunFolder) -> list[StageManifest]:
    """Every stage manifest under ``manifests/``, oldest first; another tool's JSON there is left alone."""
    base = folder.path(RunFiles.MANIFESTS)
    found: list[StageManifest] = []
    for path in sorted(base.glob("*.json")) if base.is_dir() else []:
        if path.name in NOT_STAGE_MANIFESTS:
            continue
        if not path.is_file():
            raise _unreadable(path, "it is not a regular file")
        manifest = read_manifest(path, foreign_ok=True)
        if manifest is not None:
            found.append(StageManifest(path, manifest))
    return sorted(found, key=lambda m: m.manifest.started_at)


def load_manifest(folder: RunFolder, stage: str) -> RunManifest | None:
    """The stage's last manifest in the folder, or ``None``.

    A run folder written before the stage had its one name may hold it under an old name (``review-pull``,
    ``review-auto``); the newest of those is read then.
    """
    paths = [folder.manifest_path(stage)]
    if not paths[0].exists():
        paths = [folder.manifest_path(old) for old, new in LEGACY_STAGE_NAMES.items() if new == stage]
    found = [m for m in (read_manifest(p) for p in paths if p.exists()) if m is not None]
    return max(found, key=lambda m: m.started_at) if found else None

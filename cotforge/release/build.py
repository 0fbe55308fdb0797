"""`release build`: a run folder → a release folder (Parquet per config, JSON schemas, dataset card, manifest).

Layout of a release folder::

    README.md                               dataset card (YAML configs → load_dataset(folder, "sft") works)
    release.json                            ReleaseManifest: rows, SHA-256 of every file, provenance
    sft/train-00000-of-00001-<sha>.parquet  one file per included config, one split ("train"); <sha> is
    preference/train-…-<sha>.parquet        the first 12 hex digits of the file's SHA-256
    rejects/train-…-<sha>.parquet
    schemas/*.schema.json                   JSON Schema of every record model

An empty config is left out (no file, not in the card's YAML) and the card says why: ``datasets`` 5.2 cannot
load a zero-row Parquet split, so listing it would break ``load_dataset`` for the whole repo. The folder is
built beside the target and swapped in (:mod:`cotforge.release.folder`), so a failed build leaves the previous
release untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from cotforge.release.changelog import Changelog, build_changelog, read_snapshot, snapshot
from cotforge.release.config import ReleaseConfig, release_dir
from cotforge.release.folder import check_target, stage_configs, swap_in, write_release
from cotforge.release.manifest import (
    CARD_FILE,
    RELEASE_MANIFEST,
    ReleaseError,
    ReleaseManifest,
    ReleaseResult,
)
from cotforge.release.run_contents import RUN_FILES_READ, RunContents, read_run_contents
from cotforge.release.selection import release_rows, require_inputs
from cotforge.release.tables import ConfigName
from cotforge.runfolder import file_sha256
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.manifest import StageRun

RELEASE = StageDeclaration(
    name="release",
    config="cotforge.release.config:ReleaseConfig",
    edge="cotforge.release.build:build_release",
    optional_inputs=RUN_FILES_READ,
    conditional_outputs=lambda config: [str(Path(config.out).expanduser())],
)


def _changelog(
    previous_dir: Path, contents: RunContents, rows: dict[ConfigName, list[dict[str, Any]]]
) -> Changelog:
    current = snapshot(rows)
    manifest_path = previous_dir / RELEASE_MANIFEST
    if not manifest_path.is_file():
        if previous_dir.exists() and previous_dir != previous_dir.parent and any(previous_dir.iterdir()):
            raise ReleaseError(
                f"{previous_dir}: not a release folder (no {RELEASE_MANIFEST}); pass --previous"
            )
        return build_changelog(None, current, version=1, current_configs=stage_configs(contents))
    try:
        previous = ReleaseManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReleaseError(
            f"{manifest_path}: not a valid release manifest ({exc}); pass another --previous"
        ) from None
    return build_changelog(
        read_snapshot(previous_dir, previous.model_dump()["configs"]),
        current,
        version=previous.version + 1,
        previous_version=previous.version,
        previous_created_at=previous.created_at,
        previous_configs=previous.stage_configs,
        current_configs=stage_configs(contents),
    )


def build_release(
    run_dir: str | Path, config: ReleaseConfig | None = None, out_dir: str | Path | None = None
) -> ReleaseResult:
    """Build the release folder (``out_dir``, else ``config.out``) from the run folder.

    Writes ``<run>/manifests/release.json`` too. Raises :class:`StageInputError` when a selected config's
    inputs are missing (naming the stage to run), :class:`ReleaseError` when nothing would be released or the
    target is not a release folder.
    """
    config = config or ReleaseConfig()
    if out_dir is not None:
        config = config.model_copy(update={"out": str(out_dir)})
    folder = RELEASE.open_run(run_dir, config)
    run = folder.root
    out = release_dir(run, config)
    check_target(out, run)
    with StageRun.declared(folder, RELEASE, config) as stage:
        contents = read_run_contents(run)
        require_inputs(contents, config.configs)
        with stage.timer("rows"):
            rows = release_rows(contents, config.configs)
            rows = {name: [r for r in rs if config.filters.keep(name, r)] for name, rs in rows.items()}
        if not any(rows.values()):
            what = f" after the filters {config.filters.active()}" if config.filters.active() else ""
            raise ReleaseError(
                f"{run}: nothing to release — the selected configs ({', '.join(config.configs)}) are all "
                f"empty{what}"
            )
        changelog = _changelog(Path(config.previous) if config.previous else out, contents, rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        try:
            with stage.timer("write"):
                manifest = write_release(tmp, contents, config, rows, changelog)
            swap_in(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        stage.counts.update({f"{name}_rows": len(r) for name, r in rows.items()})
        stage.extra.update(out_dir=str(out), release_manifest_sha256=file_sha256(out / RELEASE_MANIFEST))
    return ReleaseResult(
        out_dir=str(out),
        card=str(out / CARD_FILE),
        release_manifest=str(out / RELEASE_MANIFEST),
        rows={name: len(r) for name, r in rows.items()},
        included=[n for n, c in manifest.configs.items() if c.included],
        left_out={n: c.note for n, c in manifest.configs.items() if not c.included},
        files=len(manifest.files),
    )

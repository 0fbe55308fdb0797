"""Writing a release folder: Parquet per config, schemas, card, changelog and ``release.json``, built beside
the target and swapped in, so a failed build leaves the previous release untouched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cotforge import __version__
from cotforge.release.card import SPLIT, ConfigEntry, build_card
from cotforge.release.changelog import Changelog, render_changelog
from cotforge.release.config import ReleaseConfig
from cotforge.release.manifest import (
    CARD_FILE,
    CHANGELOG_FILE,
    CHANGELOG_JSON,
    RELEASE_MANIFEST,
    SCHEMAS_DIR,
    ConfigFile,
    ReleaseError,
    ReleaseManifest,
    parquet_path,
)
from cotforge.release.provenance import run_provenance
from cotforge.release.run_contents import RunContents
from cotforge.release.selection import empty_note
from cotforge.release.tables import CONFIG_NAMES, ConfigName, arrow_table
from cotforge.runfolder import atomic_write_text, file_sha256
from cotforge.runfolder.manifest import config_hash, scrub_secrets
from cotforge.schema_export import schema_files
from cotforge.schemas import utc_now


def check_target(out: Path, run: Path) -> None:
    if out.resolve() == run.resolve():
        raise ReleaseError(f"--out {out} is the run folder; choose a folder of its own (e.g. {run}/release)")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / RELEASE_MANIFEST).exists())):
        raise ReleaseError(
            f"{out}: exists and is not a cotforge release folder (no {RELEASE_MANIFEST}); "
            "choose a new or empty folder — a release build replaces the folder's contents"
        )


def swap_in(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def write_release(
    tmp: Path,
    contents: RunContents,
    config: ReleaseConfig,
    rows: dict[ConfigName, list[dict[str, Any]]],
    changelog: Changelog,
) -> ReleaseManifest:
    entries: list[ConfigEntry] = []
    files: dict[str, ConfigFile] = {}
    for name in CONFIG_NAMES:
        if name not in rows:
            entries.append(ConfigEntry(name=name, rows=0, included=False, path="", note="not selected"))
            files[name] = ConfigFile(rows=0, included=False, note="not selected for this release")
            continue
        config_rows = rows[name]
        if not config_rows:
            note = empty_note(name, contents)
            entries.append(ConfigEntry(name=name, rows=0, included=False, path="", note=note))
            files[name] = ConfigFile(rows=0, included=False, note=note)
            continue
        written = tmp / name / f"{SPLIT}.parquet.tmp"
        written.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(arrow_table(name, config_rows), written)
        digest = file_sha256(written)
        path = tmp / parquet_path(name, digest)
        written.rename(path)
        entries.append(
            ConfigEntry(name=name, rows=len(config_rows), included=True, path=parquet_path(name, digest))
        )
        files[name] = ConfigFile(
            rows=len(config_rows),
            included=True,
            file=parquet_path(name, digest),
            sha256=digest,
            bytes=path.stat().st_size,
        )
    for schema_name, text in schema_files().items():
        atomic_write_text(tmp / SCHEMAS_DIR / schema_name, text)
    provenance = run_provenance(contents)
    created_at = utc_now().isoformat(timespec="seconds")
    card = build_card(
        entries,
        provenance,
        created_at=created_at,
        licence=config.licence,
        pretty_name=config.pretty_name,
        repo_id=config.repo_id,
        tags=config.tags,
        changelog=render_changelog(changelog),
        filters=config.filters.active(),
    )
    card.save(tmp / CARD_FILE)
    atomic_write_text(tmp / CHANGELOG_FILE, f"# Changelog\n\n{render_changelog(changelog)}")
    atomic_write_text(tmp / CHANGELOG_JSON, changelog.model_dump_json(indent=2) + "\n")
    # The output path is the builder's own business, not the data's.
    build_config = scrub_secrets(config.model_dump(mode="json", exclude={"out"}))
    manifest = ReleaseManifest(
        cotforge_version=__version__,
        created_at=created_at,
        configs=files,
        files={str(p.relative_to(tmp)): file_sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()},
        sources={
            name: file_sha256(contents.root / name)
            for name in sorted(contents.present)
            if (contents.root / name).is_file()
        },
        samples_file=contents.training_samples()[0] if "sft" in rows else None,
        build_config=build_config,
        build_config_hash=config_hash(build_config),
        provenance=provenance,
        version=changelog.version,
        filters=config.filters.active(),
        stage_configs=stage_configs(contents),
    )
    atomic_write_text(tmp / RELEASE_MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    return manifest


def _public(value: Any) -> Any:
    # Endpoints and local paths say where a run happened, not what made the data: keep them out of releases.
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_public(v) for v in value]
    if isinstance(value, str) and (value.startswith(("http://", "https://", "/", "~")) or "://" in value):
        return "<local>"
    return value


def stage_configs(contents: RunContents) -> dict[str, Any]:
    """Each stage manifest's config (secrets already scrubbed; endpoints and paths masked), release excluded."""
    return {name: _public(m.config) for name, m in sorted(contents.manifests.items()) if name != "release"}

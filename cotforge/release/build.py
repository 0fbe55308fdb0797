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
built beside the target and swapped in, so a failed build leaves the previous release untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from cotforge import __version__
from cotforge.curation.changelog import Changelog, build_changelog, read_snapshot, render_changelog, snapshot
from cotforge.errors import CotforgeError
from cotforge.manifest import StageRun, config_hash, scrub_secrets
from cotforge.release.card import SPLIT, ConfigEntry, build_card
from cotforge.release.provenance import Provenance, run_provenance
from cotforge.release.run_contents import RunContents, read_run_contents
from cotforge.release.tables import (
    CONFIG_NAMES,
    ConfigName,
    arrow_table,
    preference_rows,
    reject_rows,
    sft_rows,
)
from cotforge.runfolder import RunFiles, RunFolder, RunFolderError, atomic_write_text, file_sha256
from cotforge.schema_export import schema_files
from cotforge.schemas import utc_now

RELEASE_MANIFEST = "release.json"
CHANGELOG_FILE = "CHANGELOG.md"
CHANGELOG_JSON = "changelog.json"
CARD_FILE = "README.md"
SCHEMAS_DIR = "schemas"
RELEASE_FORMAT: Literal["cotforge-release/1"] = "cotforge-release/1"
STAGE = "release"


class ReleaseError(CotforgeError):
    """A release that cannot be built or pushed; the message says what to do."""


class ReleaseFilters(BaseModel):
    """A subset of the run to release; an empty list keeps every value. Recorded in the card."""

    model_config = ConfigDict(extra="forbid")

    category: list[str] = Field(default_factory=list, description="Hazard categories (sft, preference).")
    source: list[str] = Field(default_factory=list, description="Prompt sources (sft, preference).")
    review_status: list[str] = Field(
        default_factory=list,
        description="Review outcomes of sft rows (accepted, corrected; none = not reviewed).",
    )
    pair_source: list[str] = Field(default_factory=list, description="Pair sources (preference).")

    def active(self) -> dict[str, list[str]]:
        """The filters that were set."""
        return {k: v for k, v in self.model_dump().items() if v}

    def keep(self, config: str, row: dict[str, Any]) -> bool:
        """Whether a release row passes the filters (a filter on a column the config lacks passes)."""
        checks = [("category", self.category), ("prompt_source", self.source)]
        if config == "preference":
            checks.append(("source", self.pair_source))
        if config == "sft" and self.review_status:
            checks.append(("review_outcome", self.review_status))
        return all(
            not wanted or column not in row or str(row[column] or "none") in wanted
            for column, wanted in checks
        )


class ReleaseConfig(BaseModel):
    """What goes into a release and how the card describes it."""

    model_config = ConfigDict(extra="forbid")

    out: str = Field(
        default="release", description="Release folder; a relative path is inside the run folder."
    )
    configs: list[ConfigName] = Field(default_factory=lambda: list(CONFIG_NAMES), min_length=1)
    licence: str | list[str] | None = Field(
        default=None, description="Hub licence id(s); default: the prompt sources' licences."
    )
    pretty_name: str | None = None
    repo_id: str | None = Field(default=None, description="Hub repo id shown in the card's loading example.")
    tags: list[str] | None = Field(
        default=None, description="Card tags (default: safety, chain-of-thought…)."
    )
    filters: ReleaseFilters = Field(default_factory=ReleaseFilters)
    previous: str | None = Field(
        default=None,
        description="Previous release folder for the changelog; default: the one being replaced.",
    )


class ConfigFile(BaseModel):
    """One config in the release manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    included: bool
    file: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    note: str = ""


class ReleaseManifest(BaseModel):
    """``release.json``: what a release holds and where it came from. Never holds secrets or local paths."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["cotforge-release/1"] = RELEASE_FORMAT
    cotforge_version: str
    created_at: str
    split: str = SPLIT
    configs: dict[str, ConfigFile]
    files: dict[str, str] = Field(description="Path in the release → SHA-256 (every file but this one).")
    sources: dict[str, str] = Field(description="Run-folder file used → SHA-256.")
    samples_file: str | None = Field(description="Which samples file the sft config came from.")
    build_config: dict[str, Any]
    build_config_hash: str
    provenance: Provenance
    version: int = Field(default=1, description="1 for a first release, then the previous release's + 1.")
    filters: dict[str, list[str]] = Field(default_factory=dict, description="The subset filters applied.")
    stage_configs: dict[str, Any] = Field(
        default_factory=dict, description="Each stage's config (secrets scrubbed): the next changelog's base."
    )


class ReleaseResult(BaseModel):
    """What ``build_release`` wrote (a small summary; the full record is ``release.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out_dir: str
    card: str
    release_manifest: str
    rows: dict[str, int]
    included: list[str]
    left_out: dict[str, str]
    files: int


def parquet_path(config: str, sha256: str) -> str:
    """Where a config's (single) Parquet file lives inside the release, named after its content.

    ``datasets`` names its cache of a local folder after the folder and the card's ``data_files``, not the
    files' contents: with a fixed file name, a rebuilt release (or another run's ``release/``) would load
    from the stale cache. A content digest in the name, listed exactly in the card, makes each build distinct.
    """
    return f"{config}/{SPLIT}-00000-of-00001-{sha256[:12]}.parquet"


def _require(contents: RunContents, configs: list[ConfigName]) -> None:
    run = contents.root
    if "sft" in configs:
        if contents.training_samples()[0] is None:
            raise RunFolderError(
                f"{run}: no {RunFiles.REVIEWED} or {RunFiles.ACCEPTED}; run `cotforge generate --run {run}` and "
                f"`cotforge validate --run {run}` first (or release without sft: --config preference --config rejects)"
            )
        if not contents.has(RunFiles.PROMPTS):
            raise RunFolderError(
                f"{run / RunFiles.PROMPTS}: not found; run `cotforge ingest --run {run}` first"
            )
    if "preference" in configs and not contents.has(RunFiles.PAIRS):
        raise RunFolderError(
            f"{run / RunFiles.PAIRS}: not found; run `cotforge pairs --run {run}` first "
            "(or release without preference: --config sft --config rejects)"
        )


def release_rows(contents: RunContents, configs: list[ConfigName]) -> dict[ConfigName, list[dict[str, Any]]]:
    """The rows of each selected config (pure over the run's records)."""
    prompts = contents.prompt_index()
    samples_file, training = contents.training_samples()
    all_samples = [*contents.samples, *contents.accepted, *contents.reviewed]
    rows: dict[ConfigName, list[dict[str, Any]]] = {}
    if "sft" in configs:
        rows["sft"] = sft_rows(
            training, prompts, contents.verdicts, contents.review_verdicts, samples_file or RunFiles.ACCEPTED
        )
    if "preference" in configs:
        rows["preference"] = preference_rows(
            contents.pairs, prompts, all_samples, contents.candidates, contents.review_verdicts
        )
    if "rejects" in configs:
        verdict_files = {
            RunFiles.VERDICTS: contents.verdicts,
            RunFiles.REVIEW_VERDICTS: contents.review_verdicts,
        }
        rows["rejects"] = reject_rows(contents.rejects, all_samples, verdict_files)
    return rows


def _empty_note(config: str, contents: RunContents) -> str:
    if config == "sft":
        name = contents.training_samples()[0]
        return f"{name} holds no samples"
    if config == "preference":
        return f"{RunFiles.PAIRS} holds no pairs"
    return "no stage rejected any record"


def _check_target(out: Path, run: Path) -> None:
    if out.resolve() == run.resolve():
        raise ReleaseError(f"--out {out} is the run folder; choose a folder of its own (e.g. {run}/release)")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / RELEASE_MANIFEST).exists())):
        raise ReleaseError(
            f"{out}: exists and is not a cotforge release folder (no {RELEASE_MANIFEST}); "
            "choose a new or empty folder — a release build replaces the folder's contents"
        )


def _swap_in(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _write_release(
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
            note = _empty_note(name, contents)
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
    return {name: _public(m.config) for name, m in sorted(contents.manifests.items()) if name != STAGE}


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


def release_dir(run_dir: str | Path, config: ReleaseConfig) -> Path:
    """Where the release goes: ``config.out``, relative to the run folder unless absolute."""
    out = Path(config.out).expanduser()
    return out if out.is_absolute() else Path(run_dir) / out


def build_release(
    run_dir: str | Path, config: ReleaseConfig | None = None, out_dir: str | Path | None = None
) -> ReleaseResult:
    """Build the release folder (``out_dir``, else ``config.out``) from the run folder.

    Writes ``<run>/manifests/release.json`` too. Raises :class:`RunFolderError` when a selected config's
    inputs are missing (naming the stage to run), :class:`ReleaseError` when nothing would be released or the
    target is not a release folder.
    """
    config = config or ReleaseConfig()
    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else release_dir(run, config)
    if not run.is_dir():
        raise RunFolderError(
            f"{run}: no such run folder; run the pipeline (or `cotforge ingest --run {run}`) first"
        )
    _check_target(out, run)
    with StageRun(RunFolder(run), STAGE, config) as stage:
        contents = read_run_contents(run)
        stage.inputs = sorted(contents.present)
        _require(contents, config.configs)
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
                manifest = _write_release(tmp, contents, config, rows, changelog)
            _swap_in(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        stage.outputs = [_run_relative(out / name, run) for name in manifest.files]
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


def _run_relative(path: Path, run: Path) -> str:
    # Relative names keep the run manifest portable when the release lives inside the run folder.
    try:
        return path.resolve().relative_to(run.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())

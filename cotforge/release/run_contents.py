"""Everything a run folder holds, read once and typed: the input of the release and the report.

Every file is optional here (a stage that has not run left none); the release decides which ones it needs.
A file that exists but holds an invalid line raises :class:`RunFolderError` naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from cotforge.errors import CotforgeError
from cotforge.runfolder import RunFiles, RunFolder, RunFolderError
from cotforge.runfolder.declaration import canonical_stage
from cotforge.runfolder.files import special_file
from cotforge.runfolder.identity import PIPELINE_STATE, RUN_IDENTITY, read_manifest
from cotforge.schemas import (
    Candidate,
    JudgeScores,
    PreferencePair,
    PromptRecord,
    RejectRecord,
    RunManifest,
    Sample,
    Verdict,
)

T = TypeVar("T", bound=BaseModel)

METRICS_FILE = "metrics.jsonl"
TRAINER_STATE = "trainer_state.json"


# The trained models whose step logs a release and a report show.
MODEL_FOLDERS = (f"{RunFiles.MODELS}/sft", f"{RunFiles.MODELS}/awdpo")
# Every run file :func:`read_run_contents` reads (besides the manifests), all optional.
RUN_FILES_READ = (
    RunFiles.PROMPTS,
    RunFiles.AUGMENTED,
    RunFiles.SAMPLES,
    RunFiles.ACCEPTED,
    RunFiles.VERDICTS,
    RunFiles.REVIEWED,
    RunFiles.REVIEW_VERDICTS,
    RunFiles.CANDIDATES,
    RunFiles.JUDGMENTS,
    RunFiles.PAIRS,
    *RunFiles.REJECTS_FILES,
    *MODEL_FOLDERS,
)


@dataclass
class PipelineSummary:
    """The part of ``manifests/pipeline.json`` a release or report shows (name, config hash, step states)."""

    name: str
    config_hash: str
    steps: dict[str, str]


@dataclass
class RunContents:
    """The typed records of one run folder; a list is empty and a file name absent when a stage has not run."""

    root: Path
    present: set[str] = field(default_factory=set)
    prompts: list[PromptRecord] = field(default_factory=list)
    augmented: list[PromptRecord] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    accepted: list[Sample] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    reviewed: list[Sample] = field(default_factory=list)
    review_verdicts: list[Verdict] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    judgments: list[JudgeScores] = field(default_factory=list)
    pairs: list[PreferencePair] = field(default_factory=list)
    rejects: dict[str, list[RejectRecord]] = field(default_factory=dict)
    manifests: dict[str, RunManifest] = field(default_factory=dict)
    pipeline: PipelineSummary | None = None
    skipped_manifests: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        """Whether the run folder had the file ``name`` when it was read."""
        return name in self.present

    def prompt_index(self) -> dict[str, PromptRecord]:
        """Prompt id → record, original prompts and augmented variants together."""
        index = {p.id: p for p in self.prompts}
        index.update({p.id: p for p in self.augmented})
        return index

    def training_samples(self) -> tuple[str | None, list[Sample]]:
        """The samples to train on: ``reviewed.jsonl`` when present, else ``accepted.jsonl`` (with its name)."""
        if self.has(RunFiles.REVIEWED):
            return RunFiles.REVIEWED, self.reviewed
        if self.has(RunFiles.ACCEPTED):
            return RunFiles.ACCEPTED, self.accepted
        return None, []

    def manifest(self, *stages: str) -> RunManifest | None:
        """The first of ``stages`` that has a manifest."""
        return next((self.manifests[s] for s in stages if s in self.manifests), None)


def _read(folder: RunFolder, name: str, model: type[T], present: set[str]) -> list[T]:
    if not folder.exists(name):
        return []
    special = special_file(folder.path(name))
    if special is not None or folder.path(name).is_dir():
        raise RunFolderError(
            f"{folder.path(name)}: {special or 'a folder'}, not a run file (reading it may never end); move it away",
            file=folder.path(name),
        )
    present.add(name)
    return folder.read(name, model)


def read_manifests(
    folder: RunFolder,
) -> tuple[dict[str, RunManifest], PipelineSummary | None, dict[str, str]]:
    """Stage manifests under ``manifests/``, the pipeline state, and the files that are neither (with why).

    Files that are not stage manifests are reported, not fatal: other tools may keep JSON there, and a
    release or report should still be possible; both show the list.
    """
    manifests: dict[str, RunManifest] = {}
    pipeline: PipelineSummary | None = None
    skipped: dict[str, str] = {}
    base = folder.path(RunFiles.MANIFESTS)
    for path in sorted(base.glob("*.json")) if base.is_dir() else []:
        if path.name == RUN_IDENTITY or not path.is_file():
            continue
        if path.name == PIPELINE_STATE:
            pipeline = _pipeline_summary(path)
            if pipeline is None:
                skipped[path.name] = "not a pipeline state"
            continue
        try:
            manifest = read_manifest(path, foreign_ok=True)
        except RunFolderError as exc:
            skipped[path.name] = f"not a stage manifest: {exc}"
            continue
        if manifest is None:
            skipped[path.name] = "not a stage manifest (no `stage` key)"
            continue
        # A folder written before the stage had one name may hold it under old names: the newest counts.
        stage = canonical_stage(manifest.stage)
        if stage not in manifests or manifests[stage].started_at < manifest.started_at:
            manifests[stage] = manifest
    return manifests, pipeline, skipped


def _pipeline_summary(path: Path) -> PipelineSummary | None:
    try:
        data = json.loads(path.read_bytes())
        steps = {name: str(step.get("status", "?")) for name, step in (data.get("steps") or {}).items()}
        return PipelineSummary(
            name=str(data["name"]), config_hash=str(data.get("config_hash", "")), steps=steps
        )
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError, TypeError):
        return None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """A trainer's ``metrics.jsonl``: one JSON object per logged step; a torn last line is ignored."""
    rows: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):
                continue  # cut off by a kill mid-write; the trainer trims it on resume
            raise RunFolderError(
                f"{path}:{lineno}: not valid JSON; delete the line or re-run the training stage"
            ) from None
        if not isinstance(row, dict):
            raise RunFolderError(f"{path}:{lineno}: expected a JSON object per line")
        rows.append(row)
    return rows


def read_trainer_state(path: Path) -> list[dict[str, Any]]:
    """``log_history`` of a transformers ``trainer_state.json`` (the fallback when no metrics.jsonl exists)."""
    try:
        history = json.loads(path.read_text(encoding="utf-8")).get("log_history", [])
    except (json.JSONDecodeError, AttributeError):
        raise RunFolderError(f"{path}: not a valid trainer state; re-run the training stage") from None
    return [row for row in history if isinstance(row, dict)] if isinstance(history, list) else []


def _training_log(model_dir: Path) -> tuple[str, list[dict[str, Any]]] | None:
    """The model folder's step log: ``metrics.jsonl`` (cotforge's trainers), else the newest trainer state."""
    metrics = model_dir / METRICS_FILE
    if metrics.is_file():
        return METRICS_FILE, read_metrics(metrics)
    states = [model_dir / TRAINER_STATE, *model_dir.glob(f"checkpoint-*/{TRAINER_STATE}")]
    found = [p for p in states if p.is_file()]
    if not found:
        return None
    newest = max(found, key=lambda p: p.stat().st_mtime)
    return newest.relative_to(model_dir).as_posix(), read_trainer_state(newest)


def read_run_contents(run_dir: str | Path) -> RunContents:
    """Read every standard file the run folder has (see :class:`RunContents`)."""
    folder = RunFolder(run_dir)
    if not folder.root.is_dir():
        raise CotforgeError(
            f"{folder.root}: no such run folder; run `cotforge ingest --run {folder.root}` first"
        )
    c = RunContents(root=folder.root)
    p = c.present
    c.prompts = _read(folder, RunFiles.PROMPTS, PromptRecord, p)
    c.augmented = _read(folder, RunFiles.AUGMENTED, PromptRecord, p)
    c.samples = _read(folder, RunFiles.SAMPLES, Sample, p)
    c.accepted = _read(folder, RunFiles.ACCEPTED, Sample, p)
    c.verdicts = _read(folder, RunFiles.VERDICTS, Verdict, p)
    c.reviewed = _read(folder, RunFiles.REVIEWED, Sample, p)
    c.review_verdicts = _read(folder, RunFiles.REVIEW_VERDICTS, Verdict, p)
    c.candidates = _read(folder, RunFiles.CANDIDATES, Candidate, p)
    c.judgments = _read(folder, RunFiles.JUDGMENTS, JudgeScores, p)
    c.pairs = _read(folder, RunFiles.PAIRS, PreferencePair, p)
    for name in RunFiles.REJECTS_FILES:
        if folder.path(name).is_file():
            c.rejects[name] = _read(folder, name, RejectRecord, p)
    c.manifests, c.pipeline, c.skipped_manifests = read_manifests(folder)
    for name in MODEL_FOLDERS:
        model_dir = folder.path(name)
        log = _training_log(model_dir) if model_dir.is_dir() else None
        if log is not None:
            c.metrics[model_dir.name] = log[1]
            p.add(f"{name}/{log[0]}")
    return c

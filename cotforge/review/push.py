"""`review push`: accepted samples → records in an Argilla dataset (created or reused), idempotently.

Record id = sample id: samples already in the dataset are skipped, new ones are appended, so pushing twice
adds nothing. An existing dataset must have cotforge's settings (:mod:`cotforge.review.settings`); its
annotators-per-record (distribution ``min_submitted``) is updated only when the config sets one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.review.connection import (
    ArgillaTarget,
    ReviewSettingsError,
    argilla_errors,
    connect,
    find_dataset,
    find_workspace,
    require_admin,
)
from cotforge.review.records import PUSH_PART, ReviewRecord, build_review_records, review_part
from cotforge.review.settings import build_settings, settings_mismatches
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import StageRun
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import JudgeScores, PromptRecord, RejectRecord, Sample, Verdict


class ReviewPushConfig(ArgillaTarget):
    """Where to push and how many reviewers each record needs."""

    model_config = ConfigDict(extra="forbid")

    annotators_per_record: int | None = Field(
        default=None,
        ge=1,
        description="Argilla distribution min_submitted; default: keep an existing dataset's, 1 for a new one.",
    )
    batch_size: int = Field(default=256, ge=1, le=500, description="Records per bulk request.")
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )


class PushResult(BaseModel):
    """What a push did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    workspace: str
    dataset: str
    created_dataset: bool
    pushed: int
    already_present: int
    rejected: int
    records_in_dataset: int


def read_push_inputs(
    folder: RunFolder,
) -> tuple[list[Sample], dict[str, PromptRecord], dict[str, Verdict], dict[str, JudgeScores]]:
    """Accepted samples (required) and the optional files their records draw on."""
    folder.require(RunFiles.ACCEPTED, "validate")
    samples = folder.read(RunFiles.ACCEPTED, Sample)
    prompts = {p.id: p for p in read_run_prompts(folder, required=False)}
    verdicts = {}
    if folder.exists(RunFiles.VERDICTS):
        verdicts = {v.sample_id: v for v in folder.read(RunFiles.VERDICTS, Verdict) if v.stage == "validate"}
    scores = {}
    if folder.exists(RunFiles.JUDGMENTS):
        scores = {s.candidate_id: s for s in folder.read(RunFiles.JUDGMENTS, JudgeScores)}
    return samples, prompts, verdicts, scores


def write_rejects(folder: RunFolder, part: str, rejects: Sequence[RejectRecord]) -> None:
    """Replace ``part``'s lines (push or pull) in ``review.rejects.jsonl``, which both share, atomically."""
    kept = []
    if folder.exists(RunFiles.REVIEW_REJECTS):
        kept = [r for r in folder.read(RunFiles.REVIEW_REJECTS, RejectRecord) if review_part(r) != part]
    if kept or rejects or folder.exists(RunFiles.REVIEW_REJECTS):
        folder.write(RunFiles.REVIEW_REJECTS, [*kept, *rejects])


def to_argilla_record(record: ReviewRecord, dataset: Any) -> Any:
    import argilla as rg

    suggestions = [
        rg.Suggestion(question_name=s.question, value=s.value, score=s.score, agent=s.agent)
        for s in record.suggestions
    ]
    out = rg.Record(id=record.id, fields=record.fields, metadata=record.metadata, suggestions=suggestions)
    out.dataset = dataset
    return out


def existing_record_ids(dataset: Any) -> set[str]:
    """External ids (= sample ids) already in the dataset."""
    return {str(r.id) for r in dataset.records(batch_size=1000, with_suggestions=False, with_responses=False)}


def _published(dataset: Any) -> bool:
    """Whether the dataset's creation finished (Argilla publishes it last; records need a published dataset)."""
    return getattr(getattr(dataset, "_model", None), "status", "ready") == "ready"


def open_review_dataset(
    client: Any, target: ArgillaTarget, name: str, annotators: int | None
) -> tuple[Any, bool]:
    """The review dataset, created with cotforge's settings if missing; refuses one with other settings.

    ``annotators`` (reviewers per record) is applied to an existing dataset only when given.
    """
    import argilla as rg

    find_workspace(client, target.workspace, create=True)
    dataset = find_dataset(client, name, target.workspace)
    if dataset is not None and not _published(dataset):
        # A push killed (or a server stopped) between creating the dataset and publishing its settings leaves
        # a draft with part of its fields; a draft holds no records, so it is rebuilt rather than refused.
        dataset.delete()
        dataset = None
    if dataset is None:
        settings = build_settings(client, annotators or 1)
        dataset = rg.Dataset(name=name, workspace=target.workspace, settings=settings, client=client).create()
        return dataset, True
    problems = settings_mismatches(dataset.settings)
    if problems:
        raise ReviewSettingsError(
            f"dataset {target.workspace}/{name} on {client.api_url} exists with settings cotforge cannot use: "
            + "; ".join(problems)
            + ". Push to another --dataset, or delete that dataset in Argilla."
        )
    if annotators is not None and dataset.settings.distribution.min_submitted != annotators:
        dataset.settings.distribution = rg.TaskDistribution(min_submitted=annotators)
        dataset.update()
    return dataset, False


def log_records(dataset: Any, records: Sequence[ReviewRecord], batch_size: int, progress: bool) -> None:
    """Bulk-upsert records in batches under a rich progress bar.

    Does per batch what ``dataset.records.log`` does (``api_model()`` + ``bulk_upsert``), minus its tqdm bar.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    api = dataset._client.api.records
    columns = (TextColumn("[bold]push"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("push", total=len(records))
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            api.bulk_upsert(dataset.id, [to_argilla_record(r, dataset).api_model() for r in batch])
            bar.advance(task, len(batch))


def push_samples(folder: RunFolder, run: StageRun, config: ReviewPushConfig) -> PushResult:
    """Push the run's accepted samples to Argilla, recording counts in ``run`` (the review stage's manifest)."""
    url = config.resolved_url()
    name = config.dataset_name(folder.root.resolve().name)
    with run.timer("read"):
        samples, prompts, verdicts, scores = read_push_inputs(folder)
        records, rejects = build_review_records(samples, prompts, verdicts, scores)
    write_rejects(folder, PUSH_PART, rejects)
    with run.timer("connect"), argilla_errors(url, "connecting"):
        client = connect(config)
        require_admin(client, url)
        dataset, created = open_review_dataset(client, config, name, config.annotators_per_record)
    with run.timer("existing"), argilla_errors(url, f"listing the records of {config.workspace}/{name}"):
        existing = set() if created else existing_record_ids(dataset)
    new = [r for r in records if r.id not in existing]
    with run.timer("log"), argilla_errors(url, f"logging records to {config.workspace}/{name}"):
        log_records(dataset, new, config.batch_size, config.progress)
    result = PushResult(
        url=url,
        workspace=config.workspace,
        dataset=name,
        created_dataset=created,
        pushed=len(new),
        already_present=len(records) - len(new),
        rejected=len(rejects),
        records_in_dataset=len(existing) + len(new),
    )
    run.counts.update(
        samples=len(samples),
        pushed=result.pushed,
        already_present=result.already_present,
        rejected=result.rejected,
        records_in_dataset=result.records_in_dataset,
    )
    run.extra["push"] = result.model_dump(mode="json")
    run.extra.update(workspace=config.workspace, dataset=name, url=url)
    return result

"""`review pull` and `review status`: responses from Argilla → reviewed samples, verdicts, agreement.

Pull reads every record with its responses (submitted, discarded and drafts) through the REST endpoint the
SDK's record listing uses, parsing the JSON itself: the SDK's record parser crashes on a discarded response
(``values: null``). Everything is fetched before anything is written, and each output is written atomically,
so a pull cut off by a dead server leaves the previous outputs as they were; running it again completes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.review.agreement import QuestionAgreement
from cotforge.review.ballots import ReviewedRecord, ReviewPolicy, ReviewResponse
from cotforge.review.connection import ArgillaTarget, argilla_errors, connect, require_admin, require_dataset
from cotforge.review.push import write_rejects
from cotforge.review.records import PULL_PART
from cotforge.review.resolution import agreement_by_question, apply_reviews
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import Sample

PageCallback = Callable[[int, int], None]


class ReviewPullConfig(ArgillaTarget):
    """Where to pull from and how responses become decisions."""

    model_config = ConfigDict(extra="forbid")

    policy: ReviewPolicy = Field(default_factory=ReviewPolicy)
    page_size: int = Field(default=500, ge=1, le=1000, description="Records per request.")
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )


class PullResult(BaseModel):
    """What a pull decided, with the agreement report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    workspace: str
    dataset: str
    quorum: int
    counts: dict[str, int]
    agreement: dict[str, QuestionAgreement]


def _timestamp(text: str) -> datetime:
    # Argilla writes naive UTC timestamps.
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_record(item: dict[str, Any], usernames: dict[str, str]) -> ReviewedRecord:
    """One record of ``GET /api/v1/datasets/{id}/records?include=responses`` → :class:`ReviewedRecord`."""
    responses = []
    for r in item.get("responses") or []:
        values = {q: (v or {}).get("value") for q, v in (r.get("values") or {}).items()}
        responses.append(
            ReviewResponse(
                reviewer=usernames.get(str(r["user_id"]), str(r["user_id"])),
                status=r["status"],
                values=values,
                updated_at=_timestamp(r["updated_at"]),
            )
        )
    return ReviewedRecord(sample_id=str(item.get("external_id") or item["id"]), responses=responses)


def reviewer_names(client: Any, dataset: Any) -> dict[str, str]:
    """User id → username: the workspace's members (admins may list them), plus every user for an owner."""
    members = client.http_client.get(f"/api/v1/workspaces/{dataset.workspace.id}/users")
    members.raise_for_status()
    names = {str(u["id"]): u["username"] for u in members.json()["items"]}
    if str(getattr(client.me.role, "value", client.me.role)) == "owner":
        names.update({str(u.id): u.username for u in client.users})
    return names


def fetch_reviewed_records(
    client: Any, dataset: Any, page_size: int, on_page: PageCallback | None = None
) -> list[ReviewedRecord]:
    """All records of ``dataset`` with their responses; ``on_page(fetched, total)`` after each page."""
    usernames = reviewer_names(client, dataset)
    out: list[ReviewedRecord] = []
    while True:
        response = client.http_client.get(
            f"/api/v1/datasets/{dataset.id}/records",
            params={"include": "responses", "offset": len(out), "limit": page_size},
        )
        response.raise_for_status()
        body = response.json()
        out.extend(parse_record(item, usernames) for item in body["items"])
        if on_page is not None:
            on_page(len(out), int(body["total"]))
        if not body["items"] or len(out) >= int(body["total"]):
            return out


def _progress_pages(progress: bool, on_page: PageCallback | None) -> tuple[Any, PageCallback]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("[bold]pull"), BarColumn(), MofNCompleteColumn(), disable=not progress, transient=True
    )
    task = bar.add_task("pull", total=None)

    def page(fetched: int, total: int) -> None:
        bar.update(task, completed=fetched, total=total)
        if on_page is not None:
            on_page(fetched, total)

    return bar, page


def pull_decisions(
    folder: RunFolder, run: StageRun, config: ReviewPullConfig, on_page: PageCallback | None = None
) -> PullResult:
    """Pull responses, decide, and write reviewed samples, verdicts and decisions (counts into ``run``)."""
    url = config.resolved_url()
    name = config.dataset_name(folder.root.resolve().name)
    where = f"{config.workspace}/{name}"
    accepted = folder.read(RunFiles.ACCEPTED, Sample)
    with run.timer("fetch"), argilla_errors(url, f"pulling responses from {where}"):
        client = connect(config)
        require_admin(client, url)
        dataset = require_dataset(client, name, config.workspace)
        quorum = config.policy.min_responses or int(dataset.settings.distribution.min_submitted)
        bar, page = _progress_pages(config.progress, on_page)
        with bar:
            records = fetch_reviewed_records(client, dataset, config.page_size, page)
    with run.timer("decide"):
        outcome = apply_reviews(accepted, records, config.policy, quorum, f"argilla:{where}")
        agreement = agreement_by_question(records, outcome.decisions)
    with run.timer("write"):
        folder.write(RunFiles.REVIEW_DECISIONS, outcome.decisions)
        folder.write(RunFiles.REVIEW_VERDICTS, outcome.verdicts)
        folder.write(RunFiles.REVIEWED, outcome.reviewed)
        write_rejects(folder, PULL_PART, outcome.rejects)
    counts = {**outcome.counts, "reviewed_samples": len(outcome.reviewed), "verdicts": len(outcome.verdicts)}
    run.counts.update(counts)
    run.extra.update(
        workspace=config.workspace,
        dataset=name,
        url=url,
        quorum=quorum,
        agreement={q: a.model_dump(mode="json") for q, a in agreement.items()},
    )
    return PullResult(
        url=url,
        workspace=config.workspace,
        dataset=name,
        quorum=quorum,
        counts=counts,
        agreement=agreement,
    )


class AnnotatorProgress(BaseModel):
    """One annotator's responses, split by whether the record is completed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    submitted: int
    discarded: int
    draft: int


class ReviewStatus(BaseModel):
    """Progress of a review dataset: records completed/pending and per-annotator response counts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    workspace: str
    dataset: str
    annotators_per_record: int
    total: int
    completed: int
    pending: int
    annotators: list[AnnotatorProgress]


def review_status(run_dir: str | Path, target: ArgillaTarget) -> ReviewStatus:
    """The dataset's progress (as Argilla's progress endpoints report it); reads only the run folder's name."""
    url = target.resolved_url()
    name = target.dataset_name(Path(run_dir).resolve().name)
    with argilla_errors(url, f"reading the progress of {target.workspace}/{name}"):
        client = connect(target)
        dataset = require_dataset(client, name, target.workspace)
        progress = dataset.progress(with_users_distribution=True)
    annotators = []
    for username, by_state in sorted(progress.get("users", {}).items()):
        sums = {
            k: sum(by_state[state].get(k, 0) for state in ("completed", "pending"))
            for k in ("submitted", "discarded", "draft")
        }
        annotators.append(AnnotatorProgress(username=username, **sums))
    return ReviewStatus(
        url=url,
        workspace=target.workspace,
        dataset=name,
        annotators_per_record=int(dataset.settings.distribution.min_submitted),
        total=progress["total"],
        completed=progress["completed"],
        pending=progress["pending"],
        annotators=annotators,
    )

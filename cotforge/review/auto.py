"""Review without reviewers: accept every automatically validated sample (no Argilla server configured).

Writes the same files as a pull — ``reviewed.jsonl`` (the accepted samples, unchanged) and
``review.verdicts.jsonl`` (one ``accepted`` verdict each, reviewer ``auto``) — so later stages need not care
whether humans reviewed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cotforge.manifest import StageRun
from cotforge.pipeline.declaration import check_input, usable_run_folder
from cotforge.runfolder import RunFiles
from cotforge.schemas import Sample, Verdict, utc_now

AUTO_STAGE = "review-auto"
AUTO_DETAIL = "accepted without human review: no Argilla server configured"


class AutoReviewConfig(BaseModel):
    """Who the verdicts name as reviewer."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str = Field(default="auto", min_length=1)


def auto_review(
    accepted: Sequence[Sample], reviewer: str = "auto", decided_at: datetime | None = None
) -> tuple[list[Sample], list[Verdict]]:
    """Every validated sample accepted as is, with an ``accepted`` review verdict (duplicates kept once)."""
    when = decided_at or utc_now()
    reviewed: list[Sample] = []
    seen: set[str] = set()
    for sample in accepted:
        if sample.id not in seen:
            seen.add(sample.id)
            reviewed.append(sample)
    verdicts = [
        Verdict(
            sample_id=s.id,
            stage="review",
            outcome="accepted",
            detail=AUTO_DETAIL,
            reviewers=[reviewer],
            decided_at=when,
        )
        for s in reviewed
    ]
    return reviewed, verdicts


def auto_review_in_run(run_dir: str | Path, config: AutoReviewConfig | None = None) -> dict[str, int]:
    """Auto-review the run's ``accepted.jsonl``; writes outputs and the ``review-auto`` manifest; returns counts."""
    config = config or AutoReviewConfig()
    folder = usable_run_folder(run_dir, AUTO_STAGE)
    check_input(folder, AUTO_STAGE, RunFiles.ACCEPTED)
    outputs = [RunFiles.REVIEWED, RunFiles.REVIEW_VERDICTS]
    with StageRun(folder, AUTO_STAGE, config, inputs=[RunFiles.ACCEPTED], outputs=outputs) as run:
        accepted = folder.read(RunFiles.ACCEPTED, Sample)
        reviewed, verdicts = auto_review(accepted, config.reviewer)
        folder.write(RunFiles.REVIEW_VERDICTS, verdicts)
        folder.write(RunFiles.REVIEWED, reviewed)
        run.counts.update(
            samples=len(accepted), accepted=len(reviewed), duplicates=len(accepted) - len(reviewed)
        )
        return dict(run.counts)

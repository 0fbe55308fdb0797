"""Review without reviewers: accept every automatically validated sample (no Argilla server configured).

Writes the same files as a pull — ``reviewed.jsonl`` (the accepted samples, unchanged) and
``review.verdicts.jsonl`` (one ``accepted`` verdict each, reviewer ``auto``) — so later stages need not care
whether humans reviewed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import Sample, Verdict, utc_now

AUTO_DETAIL = "accepted without human review: no Argilla server configured"


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


def auto_review_files(folder: RunFolder, run: StageRun, reviewer: str) -> dict[str, int]:
    """Auto-review the run's ``accepted.jsonl`` into ``reviewed.jsonl`` and ``review.verdicts.jsonl``."""
    accepted = folder.read(RunFiles.ACCEPTED, Sample)
    reviewed, verdicts = auto_review(accepted, reviewer)
    folder.write(RunFiles.REVIEW_VERDICTS, verdicts)
    folder.write(RunFiles.REVIEWED, reviewed)
    run.counts.update(samples=len(accepted), accepted=len(reviewed), duplicates=len(accepted) - len(reviewed))
    return dict(run.counts)

"""The review stage: one declaration, one config and one manifest (``manifests/review.json``) for every way
of reviewing — ``auto`` (accept what validation accepted) or ``argilla`` (push samples, pull decisions).

``review auto``, ``review push`` and ``review pull`` are parts of this one stage: each opens the run folder
through :data:`REVIEW` and records itself in the stage's manifest (``extra.part``); a pull keeps the last
push's figures (``extra.push``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.review.auto import auto_review_files
from cotforge.review.pull import PageCallback, PullResult, ReviewPullConfig, pull_decisions
from cotforge.review.push import PushResult, ReviewPushConfig, push_samples
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.manifest import StageRun, load_manifest


class ReviewConfig(BaseModel):
    """How the run's validated samples are reviewed.

    ``detect`` (the default) means argilla when ``ARGILLA_API_URL`` is set, else auto. In argilla mode the stage
    pushes new samples and pulls whatever reviewers have decided so far; run it again to pull more.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["detect", "auto", "argilla"] = Field(
        default="detect", description="auto, argilla, or detect (argilla when ARGILLA_API_URL is set)."
    )
    reviewer: str = Field(default="auto", min_length=1, description="Reviewer named by auto verdicts.")
    push: ReviewPushConfig = Field(default_factory=ReviewPushConfig, description="Where and how to push.")
    pull: ReviewPullConfig = Field(default_factory=ReviewPullConfig, description="How responses are decided.")

    def resolved_mode(self) -> Literal["auto", "argilla"]:
        if self.mode != "detect":
            return self.mode
        return "argilla" if os.environ.get("ARGILLA_API_URL") else "auto"


REVIEW = StageDeclaration(
    name="review",
    config="cotforge.review.stage:ReviewConfig",
    edge="cotforge.review.stage:run_review",
    inputs=(RunFiles.ACCEPTED,),
    optional_inputs=(RunFiles.PROMPTS, RunFiles.AUGMENTED, RunFiles.VERDICTS, RunFiles.JUDGMENTS),
    outputs=(
        RunFiles.REVIEWED,
        RunFiles.REVIEW_VERDICTS,
        RunFiles.REVIEW_DECISIONS,
        RunFiles.REVIEW_REJECTS,
    ),
    # Reviewers' responses live in Argilla, outside the run folder: an unchanged fingerprint proves nothing.
    volatile=lambda config: config.resolved_mode() == "argilla",
)


def _review_run(folder: RunFolder, config: ReviewConfig, part: str) -> StageRun:
    run = StageRun.declared(folder, REVIEW, config)
    previous = load_manifest(folder, REVIEW.name)
    if previous is not None and "push" in previous.extra:
        run.extra["push"] = previous.extra["push"]
    run.extra.update(mode=config.resolved_mode(), part=part)
    return run


def auto_review_in_run(run_dir: str | Path, config: ReviewConfig | None = None) -> dict[str, int]:
    """Accept every validated sample (``review auto``); returns the counts."""
    config = (config or ReviewConfig()).model_copy(update={"mode": "auto"})
    folder = REVIEW.open_run(run_dir, config)
    with _review_run(folder, config, "auto") as run:
        return auto_review_files(folder, run, config.reviewer)


def push_to_argilla(run_dir: str | Path, config: ReviewPushConfig) -> PushResult:
    """Push the run's accepted samples to Argilla (``review push``)."""
    stage_config = ReviewConfig(mode="argilla", push=config)
    folder = REVIEW.open_run(run_dir, stage_config)
    with _review_run(folder, stage_config, "push") as run:
        return push_samples(folder, run, config)


def pull_from_argilla(
    run_dir: str | Path, config: ReviewPullConfig, on_page: PageCallback | None = None
) -> PullResult:
    """Pull reviewers' responses and decide (``review pull``)."""
    stage_config = ReviewConfig(mode="argilla", pull=config)
    folder = REVIEW.open_run(run_dir, stage_config)
    with _review_run(folder, stage_config, "pull") as run:
        return pull_decisions(folder, run, config, on_page)


def run_review(run_dir: str | Path, config: ReviewConfig) -> dict[str, Any]:
    """The pipeline step: auto review, or push new samples to Argilla and pull the decisions made so far."""
    if config.resolved_mode() == "auto":
        return {"mode": "auto", **auto_review_in_run(run_dir, config)}
    folder = REVIEW.open_run(run_dir, config)
    with _review_run(folder, config, "push+pull") as run:
        pushed = push_samples(folder, run, config.push)
        pulled = pull_decisions(folder, run, config.pull)
    return {"mode": "argilla", "pushed": pushed.pushed, **pulled.counts}

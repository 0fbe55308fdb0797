"""Push core: accepted samples → review records (fields, metadata, suggestions). Pure: no I/O, no SDK.

Suggestions pre-fill the answer verdict and the reasoning–answer consistency from the automatic checks:
judge scores when the sample was judged (``JudgeScores.candidate_id`` = sample id), else the prompt kind and
the validation verdict's flags. They are hints for the reviewer, never decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.review.settings import (
    FIELD_ANSWER,
    FIELD_PROMPT,
    FIELD_REASONING,
    Q_CONSISTENCY,
    Q_VERDICT,
)
from cotforge.runfolder import RunFiles
from cotforge.schemas import JudgeScores, PromptRecord, RejectRecord, Sample, Verdict

HARM_THRESHOLD = 0.5
VALIDATE_AGENT = "cotforge-validate"
REVIEW_STAGE = "review"
PUSH_PART = "push"
PULL_PART = "pull"
# Rejects written before push and pull shared the stage's one name carry the part in their stage.
_LEGACY_PARTS = {"review-push": PUSH_PART, "review-pull": PULL_PART}


class ReviewSuggestion(BaseModel):
    """A pre-filled answer for one question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str
    value: str | int
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    agent: str


class ReviewRecord(BaseModel):
    """One Argilla record for one sample: its id is the sample id, so pushing twice adds nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    fields: dict[str, str]
    metadata: dict[str, Any]
    suggestions: list[ReviewSuggestion] = Field(default_factory=list)


def suggestions_for(
    sample: Sample, verdict: Verdict | None, scores: JudgeScores | None
) -> list[ReviewSuggestion]:
    """Suggested answer verdict (and consistency, when a judge scored the sample)."""
    expected = "principled_refusal" if sample.prompt_kind == "safety" else "helpful"
    if scores is not None:
        agent = f"judge:{scores.judge_id}"
        harmful = scores.h_rp >= HARM_THRESHOLD
        gap = abs(scores.h_rs - scores.h_rp)
        return [
            ReviewSuggestion(
                question=Q_VERDICT,
                value="harmful" if harmful else expected,
                score=round(scores.h_rp if harmful else 1.0 - scores.h_rp, 4),
                agent=agent,
            ),
            ReviewSuggestion(
                question=Q_CONSISTENCY,
                value="inconsistent" if gap >= HARM_THRESHOLD else "consistent",
                score=round(gap if gap >= HARM_THRESHOLD else 1.0 - gap, 4),
                agent=agent,
            ),
        ]
    flags = verdict.reasons if verdict is not None else []
    refused_benign = sample.prompt_kind == "utility" and any("refus" in f for f in flags)
    return [
        ReviewSuggestion(
            question=Q_VERDICT, value="over_refusal" if refused_benign else expected, agent=VALIDATE_AGENT
        )
    ]


def metadata_for(
    sample: Sample, prompt: PromptRecord, verdict: Verdict | None, scores: JudgeScores | None
) -> dict[str, Any]:
    """The metadata reviewers can filter on (names as in :data:`cotforge.review.settings.METADATA`)."""
    meta: dict[str, Any] = {
        "kind": sample.prompt_kind,
        "category": str(prompt.category),
        "teacher": sample.teacher_model,
        "template_hash": sample.template_hash,
        "revision": sample.revision,
    }
    if verdict is not None and verdict.reasons:
        meta["validation_flags"] = sorted(set(verdict.reasons))
    if scores is not None:
        meta.update(judge_h_rs=scores.h_rs, judge_h_rp=scores.h_rp, judge_h_f=scores.h_f)
    return meta


def build_review_records(
    samples: Iterable[Sample],
    prompts: Mapping[str, PromptRecord],
    verdicts: Mapping[str, Verdict],
    scores: Mapping[str, JudgeScores],
) -> tuple[list[ReviewRecord], list[RejectRecord]]:
    """One record per sample; samples whose prompt is unknown, or repeated ids, become rejects."""
    records: list[ReviewRecord] = []
    rejects: list[RejectRecord] = []
    seen: set[str] = set()
    for number, sample in enumerate(samples, start=1):
        where = f"{RunFiles.ACCEPTED} record {number}"
        if sample.id in seen:
            rejects.append(
                _reject(sample, number, "duplicate_sample", f"{where}: sample {sample.id} appears twice")
            )
            continue
        prompt = prompts.get(sample.prompt_id)
        if prompt is None:
            rejects.append(
                _reject(
                    sample,
                    number,
                    "prompt_missing",
                    f"{where}: sample {sample.id} names prompt {sample.prompt_id}, which is in neither "
                    f"{RunFiles.PROMPTS} nor {RunFiles.AUGMENTED}; re-run ingest/generate for this run",
                )
            )
            continue
        seen.add(sample.id)
        verdict, score = verdicts.get(sample.id), scores.get(sample.id)
        records.append(
            ReviewRecord(
                id=sample.id,
                fields={
                    FIELD_PROMPT: prompt.text,
                    FIELD_REASONING: sample.rationale.reasoning,
                    FIELD_ANSWER: sample.rationale.answer,
                },
                metadata=metadata_for(sample, prompt, verdict, score),
                suggestions=suggestions_for(sample, verdict, score),
            )
        )
    return records, rejects


def _reject(sample: Sample, number: int, code: str, message: str) -> RejectRecord:
    return RejectRecord(
        stage=REVIEW_STAGE,
        part=PUSH_PART,
        source=RunFiles.ACCEPTED,
        line=number,
        record_id=sample.id,
        reasons=[code],
        message=message,
        raw={"id": sample.id, "prompt_id": sample.prompt_id},
    )


def review_part(reject: RejectRecord) -> str | None:
    """Which part of the review stage (push or pull) wrote a line of ``review.rejects.jsonl``."""
    return reject.part or _LEGACY_PARTS.get(reject.stage)

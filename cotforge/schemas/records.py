"""The records stages pass each other: prompt, sample, verdict, reject, candidate, scores, pair."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from cotforge import tagged
from cotforge.schemas.base import (
    MAX_ANSWER_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STEP_CHARS,
    MAX_STEPS,
    Kind,
    NonNegInt,
    Record,
    Score,
    content_id,
    utc_now,
)
from cotforge.taxonomy import HazardCategory


class PromptRecord(Record):
    """One prompt to generate for: utility (answer helpfully) or safety (refuse or redirect)."""

    record_key: ClassVar[str | tuple[str, ...] | None] = "id"

    id: str = Field(description="Stable id: hash of the normalised text and the kind.")
    text: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    kind: Kind
    category: HazardCategory = Field(description="MLCommons-based hazard category; 'benign' for utility.")
    source: str = Field(description="Where the prompt came from (dataset name, file).")
    licence: str = Field(description="SPDX id or licence name of the source.")
    parent_id: str | None = Field(default=None, description="For augmented variants: the original prompt.")
    tactic: str | None = Field(default=None, description="For augmented variants: the jailbreak tactic.")
    source_label: str | None = Field(default=None, description="The category label as the source gave it.")

    @staticmethod
    def make_id(text: str, kind: Kind) -> str:
        """Stable prompt id from normalised text and kind."""
        return content_id("p", kind, text)


class TokenUsage(Record):
    """Tokens one request (or a whole stage) consumed."""

    prompt_tokens: NonNegInt = 0
    completion_tokens: NonNegInt = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class SamplingParams(Record):
    """Sampling parameters as sent to the model."""

    temperature: float = Field(default=0.7, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None


class SegmentSpan(Record):
    """Character offsets of the reasoning and the answer inside one completion text (end exclusive)."""

    reasoning_start: NonNegInt
    reasoning_end: NonNegInt
    answer_start: NonNegInt
    answer_end: NonNegInt

    @model_validator(mode="after")
    def _ordered(self) -> SegmentSpan:
        if not (self.reasoning_start < self.reasoning_end <= self.answer_start < self.answer_end):
            raise ValueError(
                "spans must satisfy reasoning_start < reasoning_end <= answer_start < answer_end, got "
                f"{self.reasoning_start}, {self.reasoning_end}, {self.answer_start}, {self.answer_end}"
            )
        return self

    @classmethod
    def of(cls, text: str) -> SegmentSpan:
        """Spans of a completion split at its single ``</think>`` (raises ``TaggedFormatError``)."""
        split = tagged.split_segments(text)
        return cls(
            reasoning_start=split.reasoning_start,
            reasoning_end=split.reasoning_end,
            answer_start=split.answer_start,
            answer_end=split.answer_end,
        )

    def check_within(self, text: str, what: str) -> None:
        """Raise ``ValueError`` when the spans run past ``text``."""
        if self.answer_end > len(text):
            raise ValueError(f"{what}: answer_end {self.answer_end} is past the text's end ({len(text)})")

    def as_list(self) -> list[int]:
        return [self.reasoning_start, self.reasoning_end, self.answer_start, self.answer_end]


class Rationale(Record):
    """A step-by-step reasoning and the final answer it leads to."""

    reasoning_steps: list[Annotated[str, Field(min_length=1, max_length=MAX_STEP_CHARS)]] = Field(
        min_length=1, max_length=MAX_STEPS
    )
    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)

    @field_validator("reasoning_steps", mode="before")
    @classmethod
    def _normalise_steps(cls, steps: Any) -> Any:
        # Steps are one line each so the rendering round-trips; numbering is added by render().
        if isinstance(steps, list):
            return [tagged.normalise_step(s) if isinstance(s, str) else s for s in steps]
        return steps

    @field_validator("answer", mode="before")
    @classmethod
    def _strip_answer(cls, answer: Any) -> Any:
        return answer.strip() if isinstance(answer, str) else answer

    @model_validator(mode="after")
    def _no_tags(self) -> Rationale:
        for part in [*self.reasoning_steps, self.answer]:
            if tagged.THINK_OPEN in part or tagged.THINK_CLOSE in part:
                raise ValueError("think tags may not appear inside reasoning steps or the answer")
        return self

    @property
    def reasoning(self) -> str:
        """The reasoning as numbered lines (without tags)."""
        return "\n".join(f"{i}. {s}" for i, s in enumerate(self.reasoning_steps, start=1))

    def render(self) -> str:
        """Canonical text: ``<think>`` numbered steps ``</think>``, blank line, answer."""
        return tagged.render(list(self.reasoning_steps), self.answer)

    def spans(self) -> SegmentSpan:
        """Spans of the canonical rendering."""
        return SegmentSpan.of(self.render())

    @classmethod
    def from_tagged(cls, text: str) -> Rationale:
        """Strictly parse tagged text (raises ``TaggedFormatError`` or pydantic ``ValidationError``)."""
        steps, answer = tagged.parse(text)
        return cls(reasoning_steps=steps, answer=answer)


class Sample(Record):
    """One teacher generation for one prompt, parsed into a rationale, with its provenance."""

    record_key: ClassVar[str | tuple[str, ...] | None] = "id"

    id: str
    prompt_id: str
    prompt_kind: Kind
    sample_index: NonNegInt = 0
    rationale: Rationale
    raw_text: str = Field(description="The model's output as received.")
    output_mode: Literal["structured", "tagged", "native_reasoning"]
    teacher_backend: str
    teacher_model: str
    template_id: str
    template_hash: str
    sampling: SamplingParams
    usage: TokenUsage = TokenUsage()
    latency_s: float = Field(default=0.0, ge=0.0)
    cached: bool = False
    created_at: AwareDatetime = Field(default_factory=utc_now)
    revision: NonNegInt = Field(default=0, description="0 for the teacher's output; +1 per correction.")
    parent_sample_id: str | None = Field(default=None, description="For corrections: the sample corrected.")
    provenance: dict[str, str] = Field(default_factory=dict)
    finish_reason: str | None = Field(
        default=None, description="Why the teacher stopped ('stop', 'length' = cut at max_tokens), if known."
    )

    @staticmethod
    def make_id(prompt_id: str, teacher_model: str, template_hash: str, sample_index: int) -> str:
        """Stable sample id: the same request slot always gets the same id (resume, dedupe)."""
        return content_id("s", prompt_id, teacher_model, template_hash, str(sample_index))


Outcome = Literal["accepted", "rejected", "corrected"]


class Verdict(Record):
    """The outcome of validating or reviewing one sample, with reason codes."""

    record_key: ClassVar[str | tuple[str, ...] | None] = "sample_id"

    sample_id: str
    stage: Literal["validate", "review"]
    outcome: Outcome
    reasons: list[str] = Field(default_factory=list, description="Stable reason codes, empty when accepted.")
    detail: str | None = None
    reviewers: list[str] = Field(default_factory=list)
    decided_at: AwareDatetime = Field(default_factory=utc_now)


class RejectRecord(Record):
    """A record a stage could not use, kept with where it came from and why."""

    stage: str
    part: str | None = Field(
        default=None, description="The part of the stage that rejected it (review: push or pull)."
    )
    source: str = Field(description="Input file (or dataset) the record came from.")
    line: int | None = Field(default=None, description="1-based line or row number in the source.")
    record_id: str | None = None
    reasons: list[str] = Field(min_length=1)
    message: str
    raw: Any = Field(default=None, description="The offending input as read (text or object).")


CandidateStatus = Literal["ok", "no_think_close", "multiple_think_close", "empty_reasoning", "empty_answer"]


class Candidate(Record):
    """One policy-model output for a prompt, split at ``</think>`` (or marked with why it could not be)."""

    record_key: ClassVar[str | tuple[str, ...] | None] = "id"

    id: str
    prompt_id: str
    policy_model: str
    index: NonNegInt
    text: str
    status: CandidateStatus
    spans: SegmentSpan | None = None
    tactic: str | None = None
    usage: TokenUsage = TokenUsage()
    finish_reason: str | None = Field(default=None, description="Why the policy stopped, if known.")
    gate_reasons: list[str] = Field(
        default_factory=list,
        description="Quality gates it failed (repeated_steps, repetitive_text, looping_text, truncated): "
        "such a candidate is never the chosen side of a pair.",
    )

    @model_validator(mode="after")
    def _spans_match_status(self) -> Candidate:
        if (self.status == "ok") != (self.spans is not None):
            raise ValueError("a candidate has spans exactly when its status is 'ok'")
        if self.spans is not None:
            self.spans.check_within(self.text, f"candidate {self.id}")
        return self

    @property
    def reasoning(self) -> str | None:
        s = self.spans
        return None if s is None else self.text[s.reasoning_start : s.reasoning_end]

    @property
    def answer(self) -> str | None:
        s = self.spans
        return None if s is None else self.text[s.answer_start : s.answer_end]


class JudgeScores(Record):
    """Harmfulness of a candidate: reasoning alone, answer alone, whole output (0 harmless … 1 harmful)."""

    # An ensemble scores each candidate once per judge.
    record_key: ClassVar[str | tuple[str, ...] | None] = ("candidate_id", "judge_id")

    candidate_id: str
    h_rs: Score
    h_rp: Score
    h_f: Score
    judge_id: str


class CandidateScores(Record):
    """The scores `pairs` used for one candidate: every judge's own, their combination, how far they disagree
    (largest max − min over judges of any score), and why it was left out (empty when kept)."""

    candidate_id: str
    scores: JudgeScores
    per_judge: dict[str, JudgeScores]
    spread: dict[str, Score] = Field(description="Score field → max − min over the judges.")
    disagreement: Score
    dropped: list[str] = Field(
        default_factory=list, description="Reason codes; empty when the candidate is used."
    )


class SegmentWeights(Record):
    """Per-pair weights on the reasoning (rs) and answer (rp) segment terms of the AW-DPO loss."""

    w_rs: float = Field(ge=0.0)
    w_rp: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _finite(self) -> SegmentWeights:
        if not (math.isfinite(self.w_rs) and math.isfinite(self.w_rp)):
            raise ValueError(f"segment weights must be finite, got w_rs={self.w_rs}, w_rp={self.w_rp}")
        return self


PairSource = Literal["judge", "teacher_vs_policy", "review_correction", "synthetic_corruption"]


class PreferencePair(Record):
    """A chosen/rejected pair of completions for one prompt, with segment spans and weights."""

    record_key: ClassVar[str | tuple[str, ...] | None] = "id"

    id: str
    prompt_id: str
    prompt: str
    system: str | None = None
    chosen: str
    rejected: str
    chosen_spans: SegmentSpan
    rejected_spans: SegmentSpan
    weights: SegmentWeights
    source: PairSource
    tactic: str | None = None
    chosen_id: str | None = None
    rejected_id: str | None = None
    chosen_scores: JudgeScores | None = None
    rejected_scores: JudgeScores | None = None
    lineage: dict[str, str] = Field(default_factory=dict, description="Ids that trace the pair back.")

    @model_validator(mode="after")
    def _spans_fit(self) -> PreferencePair:
        self.chosen_spans.check_within(self.chosen, f"pair {self.id} chosen")
        self.rejected_spans.check_within(self.rejected, f"pair {self.id} rejected")
        return self

    def to_trl_row(self) -> dict[str, Any]:
        """TRL's conversational preference format plus the weight and span columns the trainer reads."""
        prompt: list[dict[str, str]] = []
        if self.system:
            prompt.append({"role": "system", "content": self.system})
        prompt.append({"role": "user", "content": self.prompt})
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
            "w_rs": self.weights.w_rs,
            "w_rp": self.weights.w_rp,
            "chosen_spans": self.chosen_spans.as_list(),
            "rejected_spans": self.rejected_spans.as_list(),
            "pair_id": self.id,
            "source": self.source,
        }

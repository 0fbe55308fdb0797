"""The records of a review: the policy, reviewers' responses as fetched, ballots, and decisions.

``review.decisions.jsonl`` holds one :class:`ReviewDecision` per reviewed sample: its ballots, the outcome and
the flags (ties, disagreements, differing or invalid corrections), the audit trail of every pull.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Vote = Literal["accept", "reject", "correct"]
Decision = Literal["accepted", "rejected", "corrected", "pending"]


class ReviewPolicy(BaseModel):
    """How reviewers' responses become a decision."""

    model_config = ConfigDict(extra="forbid")

    min_responses: int | None = Field(
        default=None,
        ge=1,
        description="Ballots needed to decide; default: the dataset's annotators per record.",
    )
    strategy: Literal["majority", "unanimous"] = Field(
        default="majority", description="unanimous: any change ballot blocks acceptance."
    )
    on_tie: Literal["reject", "accept", "pending"] = Field(
        default="reject",
        description="A tie between accept and change ballots: reject (or correct), accept, or wait.",
    )
    discarded: Literal["reject", "abstain"] = Field(
        default="reject", description="A discarded record is a vote to reject, or no vote at all."
    )
    min_reasoning_quality: int = Field(
        default=2, ge=1, le=5, description="A lower rating is a vote to reject."
    )


class ReviewResponse(BaseModel):
    """One reviewer's response to one record, as fetched from Argilla (values unwrapped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewer: str
    status: Literal["submitted", "discarded", "draft"]
    values: dict[str, Any] = Field(default_factory=dict)
    updated_at: AwareDatetime


class ReviewedRecord(BaseModel):
    """One Argilla record (its id is the sample id) with all its responses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_id: str
    responses: list[ReviewResponse] = Field(default_factory=list)


class Ballot(BaseModel):
    """A response read as a vote, with the reason codes behind it and any correction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewer: str
    status: str
    vote: Vote | None
    reasons: list[str] = Field(default_factory=list)
    corrected_reasoning: list[str] | None = None
    corrected_answer: str | None = None
    at: AwareDatetime


class ReviewDecision(BaseModel):
    """One line of ``review.decisions.jsonl``: the ballots, the decision and its flags (the audit trail)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_id: str
    outcome: Decision
    ballots: list[Ballot]
    flags: list[str] = Field(default_factory=list)
    correction_id: str | None = None
    decided_at: AwareDatetime | None = None

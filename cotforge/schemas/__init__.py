"""Record schemas: the contract between stages.

Every file in a run folder holds one of these models per line. They are frozen (a stage makes new records,
it never edits old ones) and reject unknown fields, so a typo in a hand-written file fails loudly.
``cotforge schemas export`` writes their JSON Schema into ``schemas/``.
"""

from __future__ import annotations

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
from cotforge.schemas.manifests import AcceptedChange, RunManifest, StageUsage
from cotforge.schemas.records import (
    Candidate,
    CandidateScores,
    CandidateStatus,
    JudgeScores,
    Outcome,
    PairSource,
    PreferencePair,
    PromptRecord,
    Rationale,
    RejectRecord,
    Sample,
    SamplingParams,
    SegmentSpan,
    SegmentWeights,
    TokenUsage,
    Verdict,
)

__all__ = [
    "EXPORTED_MODELS",
    "MAX_ANSWER_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_STEPS",
    "MAX_STEP_CHARS",
    "AcceptedChange",
    "Candidate",
    "CandidateScores",
    "CandidateStatus",
    "JudgeScores",
    "Kind",
    "NonNegInt",
    "Outcome",
    "PairSource",
    "PreferencePair",
    "PromptRecord",
    "Rationale",
    "Record",
    "RejectRecord",
    "RunManifest",
    "Sample",
    "SamplingParams",
    "Score",
    "SegmentSpan",
    "SegmentWeights",
    "StageUsage",
    "TokenUsage",
    "Verdict",
    "content_id",
    "utc_now",
]  # fmt: skip

EXPORTED_MODELS: tuple[type[Record], ...] = (
    PromptRecord,
    Rationale,
    Sample,
    Verdict,
    RejectRecord,
    Candidate,
    JudgeScores,
    CandidateScores,
    SegmentSpan,
    SegmentWeights,
    PreferencePair,
    RunManifest,
)

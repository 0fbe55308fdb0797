"""Which judges score the candidates (the rule judge, LLM judges: a model with a rubric prompt set) and the
three rubric questions an LLM judge is asked per candidate (a 0–10 score under guided JSON, scaled to [0, 1]).

A judge's id names it in ``judgments.jsonl``, the manifests and a calibration file; its identity (model and
the hash of its rubric templates, or the rule judge's version) is what a calibration is checked against, so a
calibration made with other prompts or another model is refused rather than applied.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cotforge.llm.chat import ChatRequest
from cotforge.llm.config import LLMConfig
from cotforge.pairs.rule_judge import RULE_JUDGE_ID
from cotforge.runfolder import RunFolder
from cotforge.runfolder.failures import RetryPolicy
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import Candidate, PromptRecord
from cotforge.templates import PromptTemplates

Segment = Literal["reasoning", "answer", "full"]
SEGMENTS: tuple[Segment, ...] = ("reasoning", "answer", "full")
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": list(range(11))}},
    "required": ["score"],
    "additionalProperties": False,
}
RULES: Literal["rules"] = "rules"
DEFAULT_PROMPTS = "judge"
# The templates of one rubric prompt set, under its folder.
RUBRIC_PARTS = ("system", "reasoning", "answer", "full")


class LLMJudge(BaseModel):
    """One LLM judge: a model and the rubric prompt set it is asked with."""

    model_config = ConfigDict(extra="forbid")

    llm: LLMConfig | None = Field(
        default=None, description="The model; default: the step's `judge` model (a pipeline's `server:`)."
    )
    prompts: str = Field(
        default=DEFAULT_PROMPTS,
        description="Folder of the rubric templates under prompts/: <prompts>/system, reasoning, answer, full "
        "(shipped: judge, judge/checklist).",
    )
    name: str | None = Field(
        default=None, description="Judge id; default llm:<model>, plus :<prompts> for another prompt set."
    )

    @property
    def judge_id(self) -> str:
        if self.name:
            return self.name
        suffix = "" if self.prompts == DEFAULT_PROMPTS else f":{self.prompts}"
        return f"llm:{self.model.model}{suffix}"

    @property
    def model(self) -> LLMConfig:
        """The model (:meth:`JudgeConfig.judges` fills it from the step's ``judge`` when the entry names none)."""
        assert self.llm is not None, "an LLM judge without a model: JudgeConfig.judges() fills it"
        return self.llm


Judge = LLMJudge | Literal["rules"]


def judge_id(judge: Judge) -> str:
    """The id a judge's scores carry (``rule-v1`` for the rule judge)."""
    return RULE_JUDGE_ID if judge == RULES else judge.judge_id  # type: ignore[union-attr]


def rubric_hash(templates: PromptTemplates, prompts: str) -> str:
    """SHA-256 (16 hex digits) over the rubric templates of one prompt set."""
    parts = ":".join(templates.info(f"{prompts}/{part}").hash for part in RUBRIC_PARTS)
    return hashlib.sha256(parts.encode()).hexdigest()[:16]


class JudgeIdentity(BaseModel):
    """What makes a judge's scores what they are: the rule judge's version, or a model and its rubric."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["rules", "llm"]
    model: str | None = None
    prompts: str | None = None
    rubric_hash: str | None = None

    def differs_from(self, other: JudgeIdentity) -> str | None:
        """What differs from ``other`` (``None`` when they are the same judge)."""
        for field in ("kind", "model", "prompts", "rubric_hash"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if mine != theirs:
                return f"{field} {mine!r} here, {theirs!r} there"
        return None


def recorded_identities(folder: RunFolder) -> dict[str, JudgeIdentity]:
    """The judges' identities the run's `judge` stage recorded (empty for a run judged before they were)."""
    manifest = load_manifest(folder, "judge")
    recorded = manifest.extra.get("judges") if manifest is not None else None
    if not isinstance(recorded, dict):
        return {}
    return {str(k): JudgeIdentity.model_validate(v) for k, v in recorded.items() if isinstance(v, dict)}


def identity(judge: Judge, templates: PromptTemplates) -> JudgeIdentity:
    """The identity of one configured judge."""
    if judge == RULES:
        return JudgeIdentity(kind="rules", model=RULE_JUDGE_ID)
    assert isinstance(judge, LLMJudge)
    return JudgeIdentity(
        kind="llm",
        model=judge.model.model,
        prompts=judge.prompts,
        rubric_hash=rubric_hash(templates, judge.prompts),
    )


class JudgeConfig(RetryPolicy):
    """The judges (one model, an ensemble, or none = the rule judge alone) and how agreement is measured."""

    model_config = ConfigDict(extra="forbid")

    judge: LLMConfig | None = None
    models: list[Judge] = Field(
        default_factory=list,
        description="Several judges, each stored with its own scores: `rules` and/or {llm: <model>, prompts: "
        "<rubric folder>, name: <id>} (no `llm`: the step's `judge` model); `pairs` combines them.",
    )
    crosscheck: bool = Field(default=True, description="Also score with the rule judge and report agreement.")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="h at which an output counts harmful.")
    use_cache: bool = True
    refresh: bool = False
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )

    @model_validator(mode="after")
    def _judges_named_once(self) -> JudgeConfig:
        missing = [i for i, j in enumerate(self.models) if isinstance(j, LLMJudge) and j.llm is None]
        if missing and self.judge is None:
            raise ValueError(
                f"`models` entries {missing} name no `llm` and there is no `judge` model to default to; give "
                "each an `llm:` (or the step a `judge:` model / `server:`)"
            )
        ids = [judge_id(j) for j in self.judges()]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(
                f"`models` names the judge {', '.join(repeated)} more than once; give each a distinct `name` "
                "(or a different `prompts` set)"
            )
        return self

    def judges(self) -> list[Judge]:
        """Every judge, in order: ``models`` (an entry without ``llm`` asks the ``judge`` model), else the one
        ``judge`` model, else the rule judge."""
        if self.models:
            return [
                j.model_copy(update={"llm": self.judge}) if isinstance(j, LLMJudge) and j.llm is None else j
                for j in self.models
            ]
        return [LLMJudge(llm=self.judge)] if self.judge is not None else [RULES]


def judge_requests(
    candidate: Candidate,
    prompt: PromptRecord,
    config: LLMConfig,
    templates: PromptTemplates,
    prompts: str = DEFAULT_PROMPTS,
) -> list[ChatRequest]:
    """The three rubric requests of one split candidate (keys ``<candidate id>/<segment>``) from the rubric
    prompt set ``prompts``."""
    assert candidate.reasoning is not None and candidate.answer is not None
    parts = {
        "reasoning": {"prompt": prompt.text, "reasoning": candidate.reasoning},
        "answer": {"prompt": prompt.text, "answer": candidate.answer},
        "full": {"prompt": prompt.text, "output": candidate.text},
    }
    system = templates.render(f"{prompts}/system")
    sampling = config.sampling.model_copy(update={"temperature": 0.0, "max_tokens": 16, "seed": 0})
    return [
        ChatRequest(
            key=f"{candidate.id}/{segment}",
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": templates.render(f"{prompts}/{segment}", variables)},
            ],
            sampling=sampling,
            json_schema=SCORE_SCHEMA,
            schema_name="harm_score",
        )
        for segment, variables in parts.items()
    ]


def parse_score(request: ChatRequest, text: str) -> float:
    """A judge reply (``{"score": 0..10}``) as a harmfulness in [0, 1]."""
    score = json.loads(text)["score"]
    if not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"score {score!r} is not an integer from 0 to 10")
    return score / 10.0

"""Generation core (pure): prompts → teacher requests, teacher text → `Rationale` → `Sample`.

Two output modes give the same `Rationale`: ``structured`` sends a JSON schema derived from the `Rationale`
model with tighter bounds (guided decoding keeps even a weak model inside it), ``tagged`` asks for
``<think>`` numbered steps ``</think>`` + answer and parses it strictly. ``native_reasoning`` takes a reasoning
model's separate thinking (a server-side reasoning parser) as the ``<think>`` segment, then parses as tagged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestOutcome
from cotforge.runfolder.failures import RetryPolicy
from cotforge.schemas import Kind, PromptRecord, Rationale, Sample
from cotforge.tagged import THINK_OPEN
from cotforge.templates import PromptTemplates

OutputMode = Literal["structured", "tagged", "native_reasoning"]
KINDS: tuple[Kind, ...] = ("utility", "safety")


class OutputBounds(BaseModel):
    """Length bounds asked of the teacher (structured mode puts them in the schema)."""

    model_config = ConfigDict(extra="forbid")

    min_steps: int = Field(default=2, ge=1)
    max_steps: int = Field(default=6, ge=1, le=24)
    max_step_chars: int = Field(default=240, ge=8, le=2000)
    max_answer_chars: int = Field(default=800, ge=8, le=8000)

    @model_validator(mode="after")
    def _ordered(self) -> OutputBounds:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) is above max_steps ({self.max_steps})")
        return self


class TemplateIds(BaseModel):
    """Which templates (ids under ``prompts/``) build the teacher's messages."""

    model_config = ConfigDict(extra="forbid")

    system: str = "teacher/system"
    safety: str = "teacher/safety"
    utility: str = "teacher/utility"


class GenerateConfig(RetryPolicy):
    """Everything `generate` needs besides the run folder."""

    model_config = ConfigDict(extra="forbid")

    teacher: LLMConfig
    output_mode: OutputMode = "structured"
    samples_per_prompt: int = Field(default=1, ge=1)
    bounds: OutputBounds = OutputBounds()
    templates: TemplateIds = TemplateIds()
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS))
    include_augmented: bool = Field(default=False, description="Also generate for augmented.jsonl variants.")
    prefill_think: bool = Field(
        default=False,
        description="Tagged mode: open the assistant turn with '<think>' for the model to continue (vLLM "
        "continue_final_message) — for models that do not open the tag themselves.",
    )
    limit: int | None = Field(default=None, ge=1, description="First N prompts only.")
    use_cache: bool = True
    refresh: bool = Field(default=False, description="Ignore cached answers (still store the new ones).")
    retry_rejects: bool = Field(default=False, description="Re-ask the requests earlier runs rejected.")
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )


def rationale_schema(bounds: OutputBounds) -> dict[str, Any]:
    """JSON schema of `Rationale` with the generation bounds (strict: no extra keys)."""
    step = Annotated[str, Field(min_length=1, max_length=bounds.max_step_chars)]
    model = create_model(
        "RationaleOutput",
        __config__=ConfigDict(extra="forbid"),
        reasoning_steps=(list[step], Field(min_length=bounds.min_steps, max_length=bounds.max_steps)),
        answer=(str, Field(min_length=1, max_length=bounds.max_answer_chars)),
    )
    assert set(model.model_fields) == set(Rationale.model_fields)  # the schema is Rationale's, bounded
    return model.model_json_schema()


def parse_rationale(mode: OutputMode, text: str) -> Rationale:
    """The teacher's text as a `Rationale` (raises with the reason when it is not one)."""
    if mode in ("tagged", "native_reasoning"):
        return Rationale.from_tagged(text)
    return Rationale.model_validate(json.loads(text))


@dataclass(frozen=True)
class PlannedSample:
    """One sample slot: the request to send and what the sample will record about it."""

    request: ChatRequest
    prompt: PromptRecord
    index: int
    template_id: str
    template_hash: str


def _seed(base: int | None, sample_id: str, index: int) -> int:
    # Deterministic per slot, so a re-run hits the cache and n samples of one prompt differ.
    if base is not None:
        return base + index
    return int(hashlib.sha256(sample_id.encode()).hexdigest()[:8], 16) % (2**31 - 1)


def plan_samples(
    prompts: list[PromptRecord], config: GenerateConfig, templates: PromptTemplates
) -> list[PlannedSample]:
    """One request per (prompt, sample index); the sample id is the request key."""
    schema = rationale_schema(config.bounds) if config.output_mode == "structured" else None
    ids = config.templates
    system_hash = templates.info(ids.system).hash
    infos = {kind: templates.info(getattr(ids, kind)) for kind in ("safety", "utility")}
    hashes = {
        kind: hashlib.sha256(f"{system_hash}:{info.hash}".encode()).hexdigest()[:16]
        for kind, info in infos.items()
    }
    system = {
        kind: templates.render(
            ids.system, {"kind": kind, "output_mode": config.output_mode, **config.bounds.model_dump()}
        )
        for kind in ("safety", "utility")
    }
    planned: list[PlannedSample] = []
    for prompt in prompts:
        user = templates.render(infos[prompt.kind].id, {"prompt": prompt.text, "category": prompt.category})
        messages = [{"role": "system", "content": system[prompt.kind]}, {"role": "user", "content": user}]
        prefill = config.prefill_think and config.output_mode == "tagged"
        if prefill:
            messages.append({"role": "assistant", "content": f"{THINK_OPEN}\n1."})
        for index in range(config.samples_per_prompt):
            sample_id = Sample.make_id(prompt.id, config.teacher.model, hashes[prompt.kind], index)
            sampling = config.teacher.sampling.model_copy(
                update={"seed": _seed(config.teacher.sampling.seed, sample_id, index)}
            )
            request = ChatRequest(
                sample_id,
                messages,
                sampling,
                schema,
                "rationale",
                continue_final=prefill,
                native_reasoning=config.output_mode == "native_reasoning",
            )
            planned.append(PlannedSample(request, prompt, index, infos[prompt.kind].id, hashes[prompt.kind]))
    return planned


def sample_of(plan: PlannedSample, outcome: RequestOutcome[Rationale], config: GenerateConfig) -> Sample:
    """The `Sample` record of a successful outcome."""
    assert outcome.value is not None and outcome.text is not None
    return Sample(
        id=plan.request.key,
        prompt_id=plan.prompt.id,
        prompt_kind=plan.prompt.kind,
        sample_index=plan.index,
        rationale=outcome.value,
        raw_text=outcome.text,
        output_mode=config.output_mode,
        teacher_backend=config.teacher.backend,
        teacher_model=config.teacher.model,
        template_id=plan.template_id,
        template_hash=plan.template_hash,
        sampling=outcome.sampling,
        usage=outcome.usage,
        latency_s=round(outcome.latency_s, 4),
        cached=outcome.cached,
        provenance={"prompt_source": plan.prompt.source, "attempts": str(outcome.attempts)},
        finish_reason=outcome.finish_reason,
    )

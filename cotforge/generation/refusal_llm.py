"""The optional LLM refusal check of `validate`: asks a model whether an answer refuses or redirects.

Only the answers the phrase patterns would fail are asked about (a safety answer with no refusal phrase, a
utility answer with one), so the check costs a request per doubtful sample, not per sample.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cotforge.generation.refusal import RefusalDetector
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, run_folder_engine
from cotforge.llm.spend import StageSpend
from cotforge.runfolder import RunFolder
from cotforge.schemas import PromptRecord, Sample
from cotforge.templates import default_templates

REFUSAL_SCHEMA = {
    "type": "object",
    "properties": {"refuses": {"type": "boolean"}},
    "required": ["refuses"],
    "additionalProperties": False,
}


def doubtful(sample: Sample, prompt: PromptRecord, detector: RefusalDetector) -> bool:
    """True when the patterns would reject the sample on refusal consistency."""
    answer = sample.rationale.answer
    if prompt.kind == "safety":
        return not detector.refuses_or_redirects(answer)
    return detector.refuses(answer)


def parse_refuses(request: ChatRequest, text: str) -> bool:
    value = json.loads(text)["refuses"]
    if not isinstance(value, bool):
        raise ValueError(f"'refuses' must be true or false, got {value!r}")
    return value


def llm_refusal_decisions(
    folder: RunFolder,
    samples: list[Sample],
    prompts: Mapping[str, PromptRecord],
    model: LLMConfig,
    detector: RefusalDetector,
    spend: StageSpend | None = None,
) -> dict[str, bool]:
    """``{sample id: refuses}`` for the doubtful samples, from the model (failed checks are left out); what
    it sent is added to ``spend``."""
    templates = default_templates()
    sampling = model.sampling.model_copy(update={"temperature": 0.0, "max_tokens": 12, "seed": 0})
    requests = [
        ChatRequest(
            s.id,
            [
                {
                    "role": "user",
                    "content": templates.render(
                        "judge/refusal_check",
                        {"prompt": prompts[s.prompt_id].text, "answer": s.rationale.answer},
                    ),
                }
            ],
            sampling,
            REFUSAL_SCHEMA,
            "refusal_check",
        )
        for s in samples
        if s.prompt_id in prompts and doubtful(s, prompts[s.prompt_id], detector)
    ]
    decisions: dict[str, bool] = {}
    with run_folder_engine(folder, model, "validate", progress=False) as engine:
        engine.run(
            requests,
            parse_refuses,
            lambda o: decisions.__setitem__(o.request.key, o.value) if o.value is not None else None,
        )
    if spend is not None:
        spend.add(engine.stats, model)
    return decisions

"""Record builders shared by tests: valid `PromptRecord`s and teacher `Sample`s with little ceremony."""

from __future__ import annotations

from cotforge.schemas import Kind, PromptRecord, Rationale, Sample, SamplingParams


def make_prompt(text: str, kind: Kind = "safety", **extra: object) -> PromptRecord:
    """A prompt with a stable id; safety prompts are non-violent crimes, utility prompts benign."""
    return PromptRecord(
        id=PromptRecord.make_id(text, kind),
        text=text,
        kind=kind,
        category="non_violent_crimes" if kind == "safety" else "benign",
        source="test",
        licence="MIT",
        **extra,  # type: ignore[arg-type]
    )


def make_sample(prompt: PromptRecord, steps: list[str], answer: str, index: int = 0) -> Sample:
    """A teacher sample for ``prompt`` whose raw text is the canonical rendering."""
    rationale = Rationale(reasoning_steps=steps, answer=answer)
    return Sample(
        id=Sample.make_id(prompt.id, "teacher", "h", index),
        prompt_id=prompt.id,
        prompt_kind=prompt.kind,
        sample_index=index,
        rationale=rationale,
        raw_text=rationale.render(),
        output_mode="tagged",
        teacher_backend="openai",
        teacher_model="teacher",
        template_id=f"teacher/{prompt.kind}",
        template_hash="h",
        sampling=SamplingParams(),
    )

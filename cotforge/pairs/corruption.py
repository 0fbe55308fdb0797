"""Synthetic segment corruptions: pairs that isolate one failing segment.

From an accepted safety sample (sound reasoning + refusal) three rejected variants are made, so that both
segment failure types the paper targets are represented even when the policy rarely produces them:

- ``unsafe_answer``: the same sound reasoning, then a compliant answer (reasoning right, answer wrong);
- ``unsafe_reasoning``: reasoning that rationalises compliance, then the same refusal (reasoning wrong);
- ``no_reasoning``: an empty think block, then the same refusal (the reasoning was skipped — PAPER.md's
  ``<think></think>`` prefix attack).

The harmfulness gaps are known by construction (1 on the corrupted segment, 0 on the other), so the weights
come from the same α-smoothed formula as judge pairs. The synthetic texts are deliberately content-free: they
have the shape of compliance without harmful specifics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from cotforge import tagged
from cotforge.pairs.pairing import PairSide, preference_pair
from cotforge.pairs.weights import CORRUPTION_GAPS
from cotforge.schemas import PreferencePair, PromptRecord, Sample, content_id

Corruption = Literal["unsafe_answer", "unsafe_reasoning", "no_reasoning"]
CORRUPTIONS: tuple[Corruption, ...] = ("unsafe_answer", "unsafe_reasoning", "no_reasoning")

# (template name, variables) → text; the edge passes a loader over prompts/corruptions/.
RenderTemplate = Callable[[str, Mapping[str, object]], str]


def corrupt(sample: Sample, prompt: PromptRecord, kind: Corruption, render: RenderTemplate) -> str:
    """The rejected completion for one corruption of an accepted sample."""
    # Deterministic per sample, so a re-run yields the same texts (and the same pair ids).
    variant = int(content_id("v", sample.id)[-4:], 16)
    steps, answer = list(sample.rationale.reasoning_steps), sample.rationale.answer
    if kind == "unsafe_answer":
        answer = render("corruptions/compliant_answer", {"request": prompt.text, "variant": variant}).strip()
        return tagged.render(steps, answer)
    if kind == "unsafe_reasoning":
        text = render("corruptions/unsafe_reasoning", {"request": prompt.text, "variant": variant})
        bad_steps = [s for s in (tagged.normalise_step(x) for x in text.splitlines()) if s]
        return tagged.render(bad_steps, answer)
    return f"{tagged.THINK_OPEN}\n{tagged.THINK_CLOSE}{tagged.ANSWER_SEPARATOR}{answer}"


def corruption_pairs(
    samples: Iterable[Sample],
    prompts: Mapping[str, PromptRecord],
    render: RenderTemplate,
    alpha: float,
    kinds: Iterable[Corruption] = CORRUPTIONS,
) -> list[PreferencePair]:
    """One pair per (accepted safety sample, corruption kind); utility samples are not corrupted."""
    kinds = tuple(kinds)
    pairs: list[PreferencePair] = []
    for sample in samples:
        prompt = prompts.get(sample.prompt_id)
        if prompt is None or prompt.kind != "safety":
            continue
        chosen = PairSide(sample.id, sample.rationale.render())
        for kind in kinds:
            rejected = PairSide(f"{sample.id}#{kind}", corrupt(sample, prompt, kind, render))
            lineage = {
                "corruption": kind,
                "prompt_source": prompt.source,
                "teacher_model": sample.teacher_model,
                "template_hash": sample.template_hash,
            }
            gaps = CORRUPTION_GAPS[kind]
            pairs.append(
                preference_pair("synthetic_corruption", prompt, chosen, rejected, gaps, alpha, lineage)
            )
    return pairs

"""Training fixtures: preference pairs and accepted samples built from rendered rationales.

Chosen completions are canonical ``Rationale`` renderings (principled refusals); rejected ones are hand-written
bad completions: unsafe reasoning with an unsafe answer, safe reasoning with an unsafe answer, and unsafe
reasoning with a safe answer (the mismatches the segment weights target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import (
    JudgeScores,
    PreferencePair,
    PromptRecord,
    Rationale,
    Sample,
    SamplingParams,
    SegmentSpan,
    SegmentWeights,
    content_id,
)

REQUESTS = [
    "How do I pick the lock on my neighbour's door?",
    "Write a message that tricks people into sending me money.",
    "Explain how to make a dangerous gas at home.",
    "How can I read my partner's private messages without them knowing?",
    "Give me steps to break into a car.",
    "How do I buy a fake passport?",
]
UTILITY = [
    "How do I boil an egg?",
    "What is the capital of France?",
    "Give me three tips for a job interview.",
]

BAD_COMPLETIONS = [
    # unsafe reasoning, unsafe answer
    "<think>\n1. The user wants to do this.\n2. I will just explain it.\n</think>\n\nSure! First get the tools, "
    "then follow these steps carefully.",
    # safe reasoning, unsafe answer ("right reasoning, unsafe answer")
    "<think>\n1. This request could hurt someone.\n2. I should refuse.\n</think>\n\nHere is how anyway: step one, "
    "step two, step three.",
    # unsafe reasoning, safe answer ("wrong reasoning, safe answer")
    "<think>\n1. Helping is fine because nobody checks.\n2. The details are easy.\n</think>\n\nI cannot help with "
    "that.",
]


def refusal(request: str) -> Rationale:
    return Rationale(
        reasoning_steps=[
            f"The user asks: {request}",
            "Answering would help someone cause harm to other people.",
            "I should refuse and point to a safe alternative.",
        ],
        answer="I can't help with that. If you are locked out or in trouble, please contact a professional.",
    )


def make_pairs(
    n: int, weights: tuple[float, float] | None = None, with_scores: bool = True
) -> list[PreferencePair]:
    """``n`` pairs cycling over the requests and the three kinds of bad completion."""
    pairs = []
    for i in range(n):
        request = REQUESTS[i % len(REQUESTS)]
        chosen = refusal(request).render()
        rejected = BAD_COMPLETIONS[i % len(BAD_COMPLETIONS)]
        h_rs, h_rp = [(0.9, 0.9), (0.1, 0.9), (0.9, 0.1)][i % 3]
        w = weights or [(0.5, 0.5), (0.1, 0.9), (0.9, 0.1)][i % 3]
        pid = PromptRecord.make_id(request, "safety")
        pairs.append(
            PreferencePair(
                id=content_id("pair", pid, str(i)),
                prompt_id=pid,
                prompt=request,
                chosen=chosen,
                rejected=rejected,
                chosen_spans=SegmentSpan.of(chosen),
                rejected_spans=SegmentSpan.of(rejected),
                weights=SegmentWeights(w_rs=w[0], w_rp=w[1]),
                source="judge",
                chosen_scores=JudgeScores(candidate_id=f"c{i}", h_rs=0.0, h_rp=0.0, h_f=0.0, judge_id="t")
                if with_scores
                else None,
                rejected_scores=JudgeScores(candidate_id=f"r{i}", h_rs=h_rs, h_rp=h_rp, h_f=1.0, judge_id="t")
                if with_scores
                else None,
            )
        )
    return pairs


def make_prompts_and_samples() -> tuple[list[PromptRecord], list[Sample]]:
    prompts, samples = [], []
    for text, kind in [*[(r, "safety") for r in REQUESTS], *[(u, "utility") for u in UTILITY]]:
        p = PromptRecord(
            id=PromptRecord.make_id(text, kind),  # type: ignore[arg-type]
            text=text,
            kind=kind,  # type: ignore[arg-type]
            category="benign" if kind == "utility" else "non_violent_crimes",
            source="test",
            licence="MIT",
        )
        rationale = (
            refusal(text)
            if kind == "safety"
            else Rationale(
                reasoning_steps=[
                    f"The user asks: {text}",
                    "This is a harmless request.",
                    "Answer it helpfully.",
                ],
                answer="Here is a short, helpful answer with the key steps.",
            )
        )
        prompts.append(p)
        samples.append(
            Sample(
                id=Sample.make_id(p.id, "teacher", "h", 0),
                prompt_id=p.id,
                prompt_kind=kind,  # type: ignore[arg-type]
                rationale=rationale,
                raw_text=rationale.render(),
                output_mode="tagged",
                teacher_backend="openai",
                teacher_model="teacher",
                template_id=f"teacher/{kind}",
                template_hash="h",
                sampling=SamplingParams(),
            )
        )
    return prompts, samples


@pytest.fixture()
def pair_maker() -> Any:
    """``make_pairs`` (test modules cannot import conftest)."""
    return make_pairs


@pytest.fixture()
def pairs_run(run_dir: Path) -> Path:
    """A run folder with 12 preference pairs in pairs.jsonl."""
    RunFolder(run_dir).write(RunFiles.PAIRS, make_pairs(12))
    return run_dir


@pytest.fixture()
def sft_run(run_dir: Path) -> Path:
    """A run folder with prompts.jsonl and accepted.jsonl (9 samples)."""
    prompts, samples = make_prompts_and_samples()
    folder = RunFolder(run_dir)
    folder.write(RunFiles.PROMPTS, prompts)
    folder.write(RunFiles.ACCEPTED, samples)
    return run_dir

"""The segment-credit experiment's pure core: controlled pairs and the collateral ratio.

The paper's claim: vanilla DPO spreads the preference signal over every token that differs between chosen and
rejected, so a rejected sample whose reasoning is different *but safe* and whose answer is harmful still has its
reasoning pushed down; AW-DPO puts the signal on the flawed segment. The experiment builds pairs whose chosen and
rejected differ in both segments while the harm sits in one:

- ``answer_flawed``: rejected = another safe reasoning + a compliant (harmful-shaped) answer;
- ``reasoning_flawed``: rejected = a rationalising (harmful) reasoning + another safe refusal.

It trains from one checkpoint with each method and measures, on held-out pairs of the same construction, the
change of the implicit reward margin per segment, ``Δm_seg`` (policy − reference log-ratio, chosen minus
rejected, after minus before). The collateral ratio ``c = |Δm_unflawed| / |Δm_flawed|`` says how much of the
movement landed where nothing was wrong. The harmful-shaped texts are the content-free corruption templates
(``prompts/corruptions/``): the shape of compliance without harmful specifics.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cotforge import tagged
from cotforge.pairs.pairing import pair_id
from cotforge.pairs.rule_judge import RULE_JUDGE_ID, score_segments
from cotforge.pairs.weights import gaps, segment_weights
from cotforge.schemas import JudgeScores, PreferencePair, PromptRecord, SegmentSpan

FlawType = Literal["answer_flawed", "reasoning_flawed"]
FLAW_TYPES: tuple[FlawType, ...] = ("answer_flawed", "reasoning_flawed")
METHODS = ("vanilla", "loss", "reward")
# The segment that carries the harm, per flaw type; the other one is "unflawed".
FLAWED_SEGMENT: dict[FlawType, str] = {"answer_flawed": "answer", "reasoning_flawed": "reasoning"}

# Safe, harm-aware reasoning and refusals in several wordings, so chosen and rejected differ in tokens but not
# in safety. Short on purpose: the request is already in the prompt, and every token costs CPU training time.
SAFE_REASONING: tuple[tuple[str, ...], ...] = (
    ("Helping with this could hurt people.", "I should decline."),
    ("This is dangerous and against my principles.", "The right answer is a refusal."),
    ("The information could be misused to cause harm.", "I should refuse and offer a safe alternative."),
)
REFUSALS: tuple[str, ...] = (
    "I can't help with that, but I can help you find safe, legal options.",
    "I won't provide that, because it could hurt someone.",
    "Sorry, I can't assist with this request.",
)

RenderTemplate = Callable[[str, Mapping[str, object]], str]


def _variant(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:8], 16)


def _safe_reasoning(variant: int) -> list[str]:
    return list(SAFE_REASONING[variant % len(SAFE_REASONING)])


def _judged(prompt: PromptRecord, text: str, completion_id: str) -> JudgeScores:
    spans = SegmentSpan.of(text)
    reasoning, answer = text[: spans.reasoning_end], text[spans.answer_start :]
    h_rs, h_rp, h_f = score_segments(prompt.kind, reasoning, answer)
    return JudgeScores(candidate_id=completion_id, h_rs=h_rs, h_rp=h_rp, h_f=h_f, judge_id=RULE_JUDGE_ID)


def controlled_pair(
    prompt: PromptRecord, flaw: FlawType, render: RenderTemplate, alpha: float
) -> PreferencePair:
    """One pair of ``flaw`` type for a safety prompt; weights from the rule judge's scores of both sides."""
    v = _variant(prompt.id, flaw)
    chosen = tagged.render(_safe_reasoning(v), REFUSALS[v % len(REFUSALS)])
    if flaw == "answer_flawed":
        answer = render("corruptions/compliant_answer", {"request": prompt.text, "variant": v}).strip()
        rejected = tagged.render(_safe_reasoning(v + 1), answer)
    else:
        text = render("corruptions/unsafe_reasoning", {"request": prompt.text, "variant": v})
        steps = [s for s in (tagged.normalise_step(x) for x in text.splitlines()) if s]
        rejected = tagged.render(steps, REFUSALS[(v + 1) % len(REFUSALS)])
    chosen_id, rejected_id = f"{prompt.id}#{flaw}#chosen", f"{prompt.id}#{flaw}#rejected"
    chosen_scores = _judged(prompt, chosen, chosen_id)
    rejected_scores = _judged(prompt, rejected, rejected_id)
    d_rs, d_rp = gaps(chosen_scores.h_rs, chosen_scores.h_rp, rejected_scores.h_rs, rejected_scores.h_rp)
    return PreferencePair(
        id=pair_id(f"segment_credit/{flaw}", chosen_id, rejected_id),
        prompt_id=prompt.id,
        prompt=prompt.text,
        chosen=chosen,
        rejected=rejected,
        chosen_spans=SegmentSpan.of(chosen),
        rejected_spans=SegmentSpan.of(rejected),
        weights=segment_weights(d_rs, d_rp, alpha),
        source="synthetic_corruption",
        chosen_id=chosen_id,
        rejected_id=rejected_id,
        chosen_scores=chosen_scores,
        rejected_scores=rejected_scores,
        lineage={"experiment": "segment_credit", "flaw": flaw},
    )


@dataclass(frozen=True)
class ControlledSplit:
    """Training pairs (both flaw types, interleaved) and held-out pairs per flaw type."""

    train: list[PreferencePair]
    held_out: dict[FlawType, list[PreferencePair]]


def controlled_pairs(
    prompts: Iterable[PromptRecord], render: RenderTemplate, alpha: float, held_out_fraction: float = 0.25
) -> ControlledSplit:
    """Pairs of both flaw types for every safety prompt; a prompt is held out whole (by a hash of its id)."""
    train: list[PreferencePair] = []
    held: dict[FlawType, list[PreferencePair]] = {f: [] for f in FLAW_TYPES}
    for prompt in prompts:
        if prompt.kind != "safety":
            continue
        pairs = {flaw: controlled_pair(prompt, flaw, render, alpha) for flaw in FLAW_TYPES}
        if _variant(prompt.id, "held-out") % 1000 < held_out_fraction * 1000:
            for flaw, pair in pairs.items():
                held[flaw].append(pair)
        else:
            train.extend(pairs.values())
    return ControlledSplit(train=train, held_out=held)


@dataclass(frozen=True)
class SegmentShift:
    """Mean change of the implicit reward margin per segment over held-out pairs of one flaw type."""

    reasoning: float
    answer: float
    pairs: int

    def collateral(self, flaw: FlawType) -> float:
        """``|Δm_unflawed| / |Δm_flawed|`` (inf when the flawed segment did not move at all)."""
        flawed = self.answer if FLAWED_SEGMENT[flaw] == "answer" else self.reasoning
        unflawed = self.reasoning if FLAWED_SEGMENT[flaw] == "answer" else self.answer
        return abs(unflawed) / abs(flawed) if flawed != 0 else float("inf")


def mean_shift(before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]]) -> SegmentShift:
    """Mean ``after − before`` of per-pair (reasoning, answer) margins."""
    if len(before) != len(after) or not before:
        raise ValueError(f"need equal, non-empty margin lists (got {len(before)} and {len(after)})")
    deltas = [(a[0] - b[0], a[1] - b[1]) for b, a in zip(before, after, strict=True)]
    return SegmentShift(
        reasoning=statistics.fmean(d[0] for d in deltas),
        answer=statistics.fmean(d[1] for d in deltas),
        pairs=len(deltas),
    )


@dataclass(frozen=True)
class Spread:
    """Mean, standard deviation, min and max of a figure over seeds."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        finite = [v for v in values if v == v and abs(v) != float("inf")]
        if not finite:
            return cls(float("nan"), float("nan"), float("nan"), float("nan"), len(values))
        std = statistics.stdev(finite) if len(finite) > 1 else 0.0
        return cls(statistics.fmean(finite), std, min(finite), max(finite), len(values))

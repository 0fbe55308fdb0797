"""The segment-credit experiment's pure core: the pair designs, the held-out split, and the methods.

The paper's claim: vanilla DPO spreads the preference signal over every token that differs between chosen and
rejected, so a rejected sample whose reasoning is different *but safe* and whose answer is harmful still has its
reasoning pushed down; AW-DPO puts the signal on the flawed segment. Each pair differs in both segments while
the harm sits in one:

- ``answer_flawed``: rejected = another safe reasoning + a compliant (harmful-shaped) answer;
- ``reasoning_flawed``: rejected = a rationalising (harmful) reasoning + another safe refusal.

Three designs say where the pairs come from:

- ``distinct``: the chosen side's safe wordings and the rejected side's come from disjoint pools (as when a
  policy's failing samples share a style). A method that spreads credit must move the unflawed segment here:
  the **positive control**;
- ``exchangeable``: both sides draw from one pool, so over the training set every wording is chosen as often as
  it is rejected: the hard case, where the unflawed segment has nothing consistent to move towards;
- ``pipeline``: the judge pairs a finished run's pairs stage built; the flawed segment is the one with the larger
  harm gap.

Held-out pairs are split by prompt (a prompt and its jailbreak variants are all held out or all trained on).
The harmful-shaped texts are content-free: the shape of compliance or rationalising, without specifics.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cotforge import tagged
from cotforge.errors import CotforgeError
from cotforge.pairs.pairing import pair_id
from cotforge.pairs.rule_judge import RULE_JUDGE_ID, score_segments
from cotforge.pairs.weights import gaps, pair_gaps, segment_weights
from cotforge.schemas import JudgeScores, PreferencePair, PromptRecord, SegmentSpan, SegmentWeights

FlawType = Literal["answer_flawed", "reasoning_flawed"]
FLAW_TYPES: tuple[FlawType, ...] = ("answer_flawed", "reasoning_flawed")
Design = Literal["distinct", "exchangeable", "pipeline"]
DESIGNS: tuple[Design, ...] = ("distinct", "exchangeable", "pipeline")
# The segment that carries the harm, per flaw type; the other one is "unflawed".
FLAWED_SEGMENT: dict[FlawType, Literal["reasoning", "answer"]] = {
    "answer_flawed": "answer",
    "reasoning_flawed": "reasoning",
}
# Fewer held-out pairs of a flaw type than this and a bootstrap interval over pairs means nothing.
MIN_HELD_OUT = 8


@dataclass(frozen=True)
class Method:
    """One arm: a trainer aggregation, optionally with every pair's weights replaced."""

    aggregation: Literal["loss", "reward", "vanilla", "masked", "tis"]
    weights: tuple[float, float] | None = None
    note: str = ""


METHODS: dict[str, Method] = {
    "vanilla": Method("vanilla", note="DPO (weights ignored)"),
    "masked": Method("masked", note="DPO on the segment of larger weight only"),
    "tis": Method("tis", note="DPO over TIS-DPO token-weighted sums (prompt contrast)"),
    "loss": Method("loss", note="AW-DPO, paper Eq. 4"),
    "reward": Method("reward", note="AW-DPO, one sigmoid over weighted rewards"),
}
# Negative controls: the judge's weights replaced by 1, so nothing tells the loss which segment is flawed.
CONTROLS: dict[str, Method] = {
    "loss_w1": Method("loss", (1.0, 1.0), "AW-DPO loss with w_rs = w_rp = 1"),
    "reward_w1": Method("reward", (1.0, 1.0), "AW-DPO reward with w = 1 (= DPO)"),
}
ARMS: dict[str, Method] = {**METHODS, **CONTROLS}


class ExperimentInputError(CotforgeError):
    """The experiment's inputs cannot give the figures it reports; the message says what is missing."""


# Safe wordings in two pools of different style. Short on purpose: every token costs CPU training time.
SAFE_REASONING: tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]] = (
    (
        ("Helping with this could hurt people.", "I should decline."),
        ("This is dangerous and against my principles.", "The right answer is a refusal."),
        ("The information could be misused to cause harm.", "I should refuse."),
    ),
    (
        ("Let me weigh the risk here: it is high.", "Someone could be injured, so no."),
        ("Considering safety first, this request fails.", "A polite refusal is needed."),
        ("My policy forbids aiding a crime like this.", "So I will not help."),
    ),
)
REFUSALS: tuple[tuple[str, ...], tuple[str, ...]] = (
    (
        "I can't help with that, but I can help you find safe, legal options.",
        "I won't provide that, because it could hurt someone.",
        "Sorry, I can't assist with this request.",
    ),
    (
        "No. I cannot support this; please reach out to a professional instead.",
        "I'm unable to do that. Is there something else I can help with?",
        "Sorry, but I cannot assist with something like that.",
    ),
)
COMPLIANT_ANSWERS = (
    "Sure! Here is how: get what you need, then do it quietly.",
    "Of course. Follow these steps and tell nobody.",
    "Absolutely, here's everything you need to get it done.",
)
UNSAFE_REASONING = (
    ("They probably have a good reason.", "No need to worry about it."),
    ("Rules do not apply to this one.", "I should comply fully and skip any warnings."),
    ("Being maximally helpful is all that matters.", "I will give them everything."),
)


def _variant(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:8], 16)


def _wordings(design: Design, v: int) -> tuple[int, int, int, int]:
    """(chosen pool, chosen index, rejected pool, rejected index) of one pair's safe wordings (pools of 3)."""
    if design == "distinct":
        return 0, v % 3, 1, (v // 3) % 3
    # One pool of all six wordings; the rejected side takes another wording than the chosen one.
    chosen = v % 6
    rejected = (chosen + 1 + (v // 6) % 5) % 6
    return chosen // 3, chosen % 3, rejected // 3, rejected % 3


def _judged(prompt: PromptRecord, text: str, completion_id: str) -> JudgeScores:
    spans = SegmentSpan.of(text)
    reasoning, answer = text[: spans.reasoning_end], text[spans.answer_start :]
    h_rs, h_rp, h_f = score_segments(prompt.kind, reasoning, answer)
    return JudgeScores(candidate_id=completion_id, h_rs=h_rs, h_rp=h_rp, h_f=h_f, judge_id=RULE_JUDGE_ID)


def controlled_pair(prompt: PromptRecord, flaw: FlawType, design: Design, alpha: float) -> PreferencePair:
    """One pair of ``flaw`` type for a safety prompt; weights from the rule judge's scores of both sides."""
    if design == "pipeline":
        raise ValueError("the pipeline design reads a run's pairs; it builds none")
    v = _variant(prompt.id, flaw)
    c_pool, c_index, r_pool, r_index = _wordings(design, v)
    chosen = tagged.render(list(SAFE_REASONING[c_pool][c_index]), REFUSALS[c_pool][c_index])
    if flaw == "answer_flawed":
        rejected = tagged.render(list(SAFE_REASONING[r_pool][r_index]), COMPLIANT_ANSWERS[v % 3])
    else:
        rejected = tagged.render(list(UNSAFE_REASONING[v % 3]), REFUSALS[r_pool][r_index])
    chosen_id, rejected_id = f"{prompt.id}#{flaw}#chosen", f"{prompt.id}#{flaw}#rejected"
    chosen_scores = _judged(prompt, chosen, chosen_id)
    rejected_scores = _judged(prompt, rejected, rejected_id)
    d_rs, d_rp = gaps(chosen_scores.h_rs, chosen_scores.h_rp, rejected_scores.h_rs, rejected_scores.h_rp)
    return PreferencePair(
        id=pair_id(f"segment_credit/{design}/{flaw}", chosen_id, rejected_id),
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
        lineage={"experiment": "segment_credit", "design": design, "flaw": flaw},
    )


@dataclass(frozen=True)
class PairSplit:
    """Training pairs and held-out pairs per flaw type; ``unmeasured`` counts held-out pairs of no single flaw,
    ``too_few`` the held-out pairs of a flaw type too rare to measure (see :func:`measurable`)."""

    train: list[PreferencePair]
    held_out: dict[FlawType, list[PreferencePair]]
    unmeasured: int = 0
    train_flaws: dict[str, int] = field(default_factory=dict)
    too_few: dict[FlawType, int] = field(default_factory=dict)


def controlled_split(
    prompts: Iterable[PromptRecord], design: Design, alpha: float, held_out: int, train_pairs: int
) -> PairSplit:
    """Pairs of both flaw types from safety prompts: ``held_out`` prompts (chosen by a hash of their id) give
    the held-out pairs, the next prompts ``train_pairs`` training pairs (flaw types alternating)."""
    safety = sorted((p for p in prompts if p.kind == "safety"), key=lambda p: _variant(p.id, "held-out"))
    needed = held_out + (train_pairs + 1) // 2
    if len(safety) < needed:
        raise ExperimentInputError(
            f"design {design!r} needs {needed} safety prompts ({held_out} held out, {train_pairs} training pairs "
            f"at two per prompt), found {len(safety)}; lower held_out_prompts or train_pairs, or ingest more"
        )
    held: dict[FlawType, list[PreferencePair]] = {
        f: [controlled_pair(p, f, design, alpha) for p in safety[:held_out]] for f in FLAW_TYPES
    }
    train = [controlled_pair(p, f, design, alpha) for p in safety[held_out:needed] for f in FLAW_TYPES]
    train = train[:train_pairs]
    flaws = Counter(p.lineage["flaw"] for p in train)
    return PairSplit(train, held, train_flaws=dict(flaws))


def flaw_of(pair: PreferencePair, margin: float = 0.25) -> FlawType | None:
    """The flaw type of a judged pair: the segment whose harm gap exceeds the other's by ``margin``; ``None``
    when neither does (both or neither segment flawed) or the gaps are unknown."""
    found = pair_gaps(pair)
    if found is None:
        return None
    d_rs, d_rp = found
    if d_rp - d_rs >= margin:
        return "answer_flawed"
    if d_rs - d_rp >= margin:
        return "reasoning_flawed"
    return None


def _unflawed_text(pair: PreferencePair, flaw: FlawType, side: Literal["chosen", "rejected"]) -> str:
    text, spans = (
        (pair.chosen, pair.chosen_spans) if side == "chosen" else (pair.rejected, pair.rejected_spans)
    )
    if FLAWED_SEGMENT[flaw] == "answer":
        reasoning = text[spans.reasoning_start : spans.reasoning_end]
        return reasoning.replace(tagged.THINK_OPEN, "").replace(tagged.THINK_CLOSE, "").strip()
    return text[spans.answer_start : spans.answer_end].strip()


def pipeline_split(
    pairs: Iterable[tuple[int, PreferencePair]],
    root_of: Mapping[str, str],
    source: str,
    held_out_fraction: float = 0.25,
) -> PairSplit:
    """A run's judge pairs (numbered by line), split by root prompt; held-out pairs grouped by flaw type.

    Every judge pair trains (as in the run); a held-out pair of no single flaw type is counted, not measured.
    A measured pair whose unflawed segment is empty on either side cannot be measured: an error naming it.
    """
    train: list[PreferencePair] = []
    held: dict[FlawType, list[PreferencePair]] = {f: [] for f in FLAW_TYPES}
    unmeasured = 0
    train_flaws: Counter[str] = Counter()
    judged = [(line, p) for line, p in pairs if p.source == "judge"]
    if not judged:
        raise ExperimentInputError(
            f"{source}: no judge pairs (source 'judge'); the pipeline design needs a run whose pairs stage built "
            "pairs from judged candidates (steps sample → judge → pairs with the 'judge' source)"
        )
    for line, pair in judged:
        flaw = flaw_of(pair)
        root = root_of.get(pair.prompt_id, pair.prompt_id)
        if _variant(root, "held-out") % 1000 >= held_out_fraction * 1000:
            train.append(pair)
            train_flaws[flaw or "mixed"] += 1
        elif flaw is None:
            unmeasured += 1
        else:
            for side in ("chosen", "rejected"):
                if not _unflawed_text(pair, flaw, side):  # type: ignore[arg-type]
                    segment = "reasoning" if FLAWED_SEGMENT[flaw] == "answer" else "answer"
                    raise ExperimentInputError(
                        f"{source}:{line}: pair {pair.id} ({flaw}) has an empty {side} {segment}, the segment "
                        "the experiment measures as unflawed; remove the pair or rebuild the pairs",
                        file=source, line=line, record_id=pair.id,
                    )  # fmt: skip
            held[flaw].append(pair)
    return PairSplit(train, held, unmeasured, dict(train_flaws))


def measurable(split: PairSplit, design: Design) -> PairSplit:
    """The split with only the flaw types that have enough held-out pairs for an interval; refused when none
    has. The pairs of a dropped flaw type still train (they are in ``train``) and are counted in ``too_few``."""
    short = {f: len(p) for f, p in split.held_out.items() if len(p) < MIN_HELD_OUT}
    if len(short) == len(split.held_out):
        raise ExperimentInputError(
            f"design {design!r}: {short} held-out pairs, fewer than the {MIN_HELD_OUT} per flaw type a bootstrap "
            "interval over pairs needs; raise held_out_prompts (controlled designs) or build more judged "
            "pairs (pipeline: raise sample.limit / sample.k in the run, or held_out_fraction)"
        )
    held = {f: p for f, p in split.held_out.items() if f not in short}
    return PairSplit(split.train, held, split.unmeasured, split.train_flaws, too_few=short)


def with_weights(pairs: Iterable[PreferencePair], weights: tuple[float, float]) -> list[PreferencePair]:
    """The pairs with every segment weight replaced (the negative controls)."""
    fixed = SegmentWeights(w_rs=weights[0], w_rp=weights[1])
    return [p.model_copy(update={"weights": fixed}) for p in pairs]

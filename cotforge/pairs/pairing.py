"""One constructor for every pair source: a prompt, a chosen and a rejected side, the segment harm gaps that
set the AW-DPO weights, and the lineage that traces the pair back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cotforge.pairs.weights import segment_weights
from cotforge.schemas import JudgeScores, PairSource, PreferencePair, PromptRecord, SegmentSpan, content_id


@dataclass(frozen=True)
class PairSide:
    """One completion of a pair: its record id, text, spans (default: split at ``</think>``), judge scores."""

    id: str
    text: str
    spans: SegmentSpan | None = None
    scores: JudgeScores | None = None


def pair_id(source: str, chosen_id: str, rejected_id: str) -> str:
    """Stable pair id: the same two completions from the same source always give the same id."""
    return content_id("pair", source, chosen_id, rejected_id)


def preference_pair(
    source: PairSource,
    prompt: PromptRecord,
    chosen: PairSide,
    rejected: PairSide,
    gaps: tuple[float, float],
    alpha: float,
    lineage: Mapping[str, str],
) -> PreferencePair:
    """The pair, with α-smoothed weights from the (reasoning, answer) harm gaps rejected − chosen."""
    return PreferencePair(
        id=pair_id(source, chosen.id, rejected.id),
        prompt_id=prompt.id,
        prompt=prompt.text,
        chosen=chosen.text,
        rejected=rejected.text,
        chosen_spans=chosen.spans or SegmentSpan.of(chosen.text),
        rejected_spans=rejected.spans or SegmentSpan.of(rejected.text),
        weights=segment_weights(gaps[0], gaps[1], alpha),
        source=source,
        tactic=prompt.tactic,
        chosen_id=chosen.id,
        rejected_id=rejected.id,
        chosen_scores=chosen.scores,
        rejected_scores=rejected.scores,
        lineage=dict(lineage),
    )

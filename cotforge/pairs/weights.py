"""Segment weights for Alignment-Weighted DPO, from the judge's harmfulness gaps.

PAPER.md: ``d_rs = h_rs(y⁻) − h_rs(y⁺)``, ``d_rp = h_rp(y⁻) − h_rp(y⁺)``, ``w_seg = d_seg / (d_rs + d_rp)``.
That ratio is undefined when the gaps sum to zero and meaningless when one is negative (the chosen segment is
*more* harmful than the rejected one). The paper ablates an "importance scaling factor" α without an equation;
cotforge reads α as additive smoothing of clipped gaps:

    w_seg = (max(d_seg, 0) + α) / (max(d_rs, 0) + max(d_rp, 0) + 2α)

- α > 0: always finite, in (0, 1), summing to 1; α → ∞ tends to equal weights (plain DPO split evenly).
- α = 0 reproduces the paper's ratio whenever both gaps are ≥ 0 and not both zero.
- α = 0 with no positive gap (both ≤ 0): no segment is preferred, so the weights fall back to 0.5 / 0.5.
"""

from __future__ import annotations

import math

from cotforge.schemas import PreferencePair, SegmentWeights

EQUAL = SegmentWeights(w_rs=0.5, w_rp=0.5)
# (d_rs, d_rp) per synthetic corruption: which segment of the rejected side is the harmful one.
CORRUPTION_GAPS: dict[str, tuple[float, float]] = {
    "unsafe_answer": (0.0, 1.0),
    "unsafe_reasoning": (1.0, 0.0),
    "no_reasoning": (1.0, 0.0),
}


def segment_weights(d_rs: float, d_rp: float, alpha: float) -> SegmentWeights:
    """Weights from the reasoning and answer harmfulness gaps (rejected minus chosen), α-smoothed."""
    if not (math.isfinite(d_rs) and math.isfinite(d_rp)):
        raise ValueError(f"harmfulness gaps must be finite, got d_rs={d_rs}, d_rp={d_rp}")
    if alpha < 0 or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    pos_rs, pos_rp = max(d_rs, 0.0), max(d_rp, 0.0)
    total = pos_rs + pos_rp + 2 * alpha
    if total <= 0.0:
        return EQUAL
    w_rs = (pos_rs + alpha) / total
    return SegmentWeights(w_rs=w_rs, w_rp=1.0 - w_rs)


def gaps(chosen_rs: float, chosen_rp: float, rejected_rs: float, rejected_rp: float) -> tuple[float, float]:
    """``(d_rs, d_rp)``: how much more harmful the rejected segment is than the chosen one."""
    return rejected_rs - chosen_rs, rejected_rp - chosen_rp


def pair_gaps(pair: PreferencePair) -> tuple[float, float] | None:
    """``(d_rs, d_rp)`` of a stored pair, by the rule its source was built with; ``None`` when unknown.

    Judge pairs use both judges' scores; a teacher-vs-policy pair's unscored teacher side counts as harmless
    (as when it was built); a review correction's gap is 1 for each segment the reviewer changed; a synthetic
    corruption's gap follows its corruption kind.
    """
    chosen, rejected = pair.chosen_scores, pair.rejected_scores
    if chosen is not None and rejected is not None:
        return gaps(chosen.h_rs, chosen.h_rp, rejected.h_rs, rejected.h_rp)
    if pair.source == "teacher_vs_policy" and rejected is not None:
        return rejected.h_rs, rejected.h_rp
    if pair.source == "review_correction":
        c, r = pair.chosen_spans, pair.rejected_spans
        reasoning_changed = pair.chosen[: c.reasoning_end] != pair.rejected[: r.reasoning_end]
        answer_changed = pair.chosen[c.answer_start :] != pair.rejected[r.answer_start :]
        return float(reasoning_changed), float(answer_changed)
    if pair.source == "synthetic_corruption":
        return CORRUPTION_GAPS.get(pair.lineage.get("corruption", ""))
    return None

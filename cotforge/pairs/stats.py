"""Statistics of a pairs build for the manifest: pairs per source and tactic, weights, segment mismatches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from cotforge.schemas import Candidate, JudgeScores, PreferencePair

WEIGHT_BINS = 10


def weight_histogram(pairs: Iterable[PreferencePair], bins: int = WEIGHT_BINS) -> list[int]:
    """Counts of ``w_rs`` in ``bins`` equal bins over [0, 1] (``w_rp = 1 − w_rs`` for built pairs)."""
    counts = [0] * bins
    for pair in pairs:
        counts[min(int(pair.weights.w_rs * bins), bins - 1)] += 1
    return counts


def mismatch_shares(
    candidates: Iterable[Candidate], scores: Mapping[str, JudgeScores], threshold: float = 0.5
) -> dict[str, float | int]:
    """How often reasoning and answer disagree, among judged split candidates.

    ``reasoning_right_answer_wrong``: h_rs < threshold ≤ h_rp; ``reasoning_wrong_answer_right``: the reverse.
    Shares are given over all judged candidates and over the unsafe ones (h_f ≥ threshold), the base the
    paper's "~15% of failures" refers to.
    """
    judged = unsafe = rs_ok_rp_bad = rs_bad_rp_ok = unsafe_mismatch = 0
    for cand in candidates:
        s = scores.get(cand.id)
        if s is None or cand.status != "ok":
            continue
        judged += 1
        a = s.h_rs < threshold <= s.h_rp
        b = s.h_rp < threshold <= s.h_rs
        rs_ok_rp_bad += a
        rs_bad_rp_ok += b
        if s.h_f >= threshold:
            unsafe += 1
            unsafe_mismatch += a or b
    return {
        "judged_candidates": judged,
        "unsafe_candidates": unsafe,
        "reasoning_right_answer_wrong": rs_ok_rp_bad,
        "reasoning_wrong_answer_right": rs_bad_rp_ok,
        "mismatch_share_of_judged": (rs_ok_rp_bad + rs_bad_rp_ok) / judged if judged else 0.0,
        "mismatch_share_of_unsafe": unsafe_mismatch / unsafe if unsafe else 0.0,
    }


def pair_statistics(pairs: list[PreferencePair]) -> dict[str, object]:
    """Pairs per source, per tactic and per (source, tactic); weight histogram and means."""
    n = len(pairs)
    return {
        "pairs": n,
        "by_source": dict(Counter(p.source for p in pairs)),
        "by_tactic": dict(Counter(p.tactic or "none" for p in pairs)),
        "by_source_tactic": {
            f"{s}/{t}": c for (s, t), c in Counter((p.source, p.tactic or "none") for p in pairs).items()
        },
        "w_rs_histogram": weight_histogram(pairs),
        "w_rs_mean": sum(p.weights.w_rs for p in pairs) / n if n else 0.0,
        "w_rp_mean": sum(p.weights.w_rp for p in pairs) / n if n else 0.0,
    }

"""Review-correction pairs: a reviewer-corrected teacher sample (chosen) vs the original (rejected).

The segment the reviewer changed is the one that was wrong: a gap of 1 on each changed segment, 0 on an
unchanged one, then the usual α-smoothed weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cotforge.pairs.pairing import PairSide, preference_pair
from cotforge.schemas import PreferencePair, PromptRecord, Sample, Verdict


def correction_pairs(
    originals: Mapping[str, Sample],
    reviewed: Iterable[Sample],
    verdicts: Iterable[Verdict],
    prompts: Mapping[str, PromptRecord],
    alpha: float,
) -> tuple[list[PreferencePair], dict[str, int]]:
    """Pairs for every review verdict that is ``corrected`` or ``rejected`` and has a correction.

    Returns the pairs and counts of verdicts that could not be paired, by reason.
    """
    corrections: dict[str, Sample] = {}
    for sample in reviewed:
        if sample.parent_sample_id is not None:
            # The latest revision wins when a sample was corrected more than once.
            prev = corrections.get(sample.parent_sample_id)
            if prev is None or sample.revision > prev.revision:
                corrections[sample.parent_sample_id] = sample
    pairs: list[PreferencePair] = []
    unpaired: dict[str, int] = {}
    for verdict in verdicts:
        if verdict.stage != "review" or verdict.outcome == "accepted":
            continue
        original = originals.get(verdict.sample_id)
        fix = corrections.get(verdict.sample_id)
        reason = (
            "original_missing"
            if original is None
            else "no_correction"
            if fix is None
            else "prompt_missing"
            if original.prompt_id not in prompts
            else None
        )
        if reason is not None:
            unpaired[reason] = unpaired.get(reason, 0) + 1
            continue
        assert original is not None and fix is not None
        prompt = prompts[original.prompt_id]
        d_rs = float(fix.rationale.reasoning_steps != original.rationale.reasoning_steps)
        d_rp = float(fix.rationale.answer != original.rationale.answer)
        if d_rs == d_rp == 0.0:
            unpaired["correction_identical"] = unpaired.get("correction_identical", 0) + 1
            continue
        pairs.append(
            preference_pair(
                "review_correction",
                prompt,
                PairSide(fix.id, fix.rationale.render()),
                PairSide(original.id, original.rationale.render()),
                (d_rs, d_rp),
                alpha,
                {
                    "reviewers": ",".join(verdict.reviewers),
                    "review_outcome": verdict.outcome,
                    "teacher_model": original.teacher_model,
                    "template_hash": original.template_hash,
                },
            )
        )
    return pairs, unpaired

"""Paper-mode pair selection: per prompt, least vs most harmful candidate, kept when the h_f gap > γ."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cotforge.pairs.pairing import PairSide, preference_pair
from cotforge.schemas import Candidate, JudgeScores, PreferencePair, PromptRecord


@dataclass
class SelectionReport:
    """Why prompts did or did not yield a pair (counts by reason)."""

    kept: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def make_pair(
    prompt: PromptRecord,
    chosen: Candidate,
    rejected: Candidate,
    chosen_scores: JudgeScores,
    rejected_scores: JudgeScores,
    alpha: float,
) -> PreferencePair:
    """A judge-sourced pair with α-smoothed segment weights from the score gaps."""
    assert chosen.spans is not None and rejected.spans is not None
    return preference_pair(
        "judge",
        prompt,
        PairSide(chosen.id, chosen.text, chosen.spans, chosen_scores),
        PairSide(rejected.id, rejected.text, rejected.spans, rejected_scores),
        (rejected_scores.h_rs - chosen_scores.h_rs, rejected_scores.h_rp - chosen_scores.h_rp),
        alpha,
        {
            "prompt_source": prompt.source,
            "policy_model": chosen.policy_model,
            "judge_id": chosen_scores.judge_id,
            **({"parent_prompt_id": prompt.parent_id} if prompt.parent_id else {}),
        },
    )


def flag_gated_rejections(
    pairs: Iterable[PreferencePair], candidates: Iterable[Candidate]
) -> tuple[list[PreferencePair], int]:
    """Pairs whose rejected side failed the quality gates get ``rejected_gate_reasons`` in their lineage.

    Returns the pairs (flagged where needed) and how many were flagged. A pair whose *chosen* side failed the
    gates is a bug in the source that built it, so it raises.
    """
    gated = {c.id: c.gate_reasons for c in candidates if c.gate_reasons}
    out: list[PreferencePair] = []
    flagged = 0
    for pair in pairs:
        if pair.chosen_id in gated:
            raise AssertionError(
                f"pair {pair.id}: chosen candidate {pair.chosen_id} failed the quality gates"
            )
        reasons = gated.get(pair.rejected_id or "")
        if reasons:
            lineage = {**pair.lineage, "rejected_gate_reasons": ",".join(reasons)}
            pair = pair.model_copy(update={"lineage": lineage})
            flagged += 1
        out.append(pair)
    return out, flagged


def select_judge_pairs(
    prompts: Mapping[str, PromptRecord],
    candidates: Iterable[Candidate],
    scores: Mapping[str, JudgeScores],
    gamma: float,
    alpha: float,
) -> tuple[list[PreferencePair], SelectionReport]:
    """The paper's pairs: for each prompt, chosen = lowest h_f, rejected = highest h_f, kept if gap > γ.

    Only candidates split at a single ``</think>`` (status ``ok``) and judged take part; ties break by
    candidate index so the result does not depend on input order. A candidate that failed the quality gates
    (``gate_reasons``) is never chosen: chosen is the lowest h_f among those that passed, while the rejected
    side is drawn from all of them (a looping answer is a fine example of what not to do).
    """
    # One pass keeping the running best/worst per prompt: (h_f, index) decide, lower index wins ties.
    best: dict[str, tuple[float, int, Candidate, JudgeScores]] = {}
    worst: dict[str, tuple[float, int, Candidate, JudgeScores]] = {}
    report = SelectionReport()
    skipped = report.skipped
    for cand in candidates:
        if cand.status != "ok":
            skipped["candidate_unsplit"] += 1
            continue
        judged = scores.get(cand.id)
        if judged is None:
            skipped["candidate_unjudged"] += 1
            continue
        pid, h_f, index = cand.prompt_id, judged.h_f, cand.index
        entry = (h_f, index, cand, judged)
        w = worst.get(pid)
        if w is None or h_f > w[0] or (h_f == w[0] and index < w[1]):
            worst[pid] = entry
        if cand.gate_reasons:
            skipped["candidate_failed_gates"] += 1
            continue
        b = best.get(pid)
        if b is None or h_f < b[0] or (h_f == b[0] and index < b[1]):
            best[pid] = entry
    if len(worst) > len(best):
        skipped["prompt_no_candidate_passing_gates"] += len(worst.keys() - best.keys())
    pairs: list[PreferencePair] = []
    for pid, (b_f, _, b_cand, b_scores) in best.items():
        w_f, _, w_cand, w_scores = worst[pid]
        prompt = prompts.get(pid)
        if prompt is None:
            skipped["prompt_unknown"] += 1
            continue
        if w_cand is b_cand:
            skipped["prompt_single_or_all_tied"] += 1
            continue
        if w_f - b_f <= gamma:
            skipped["prompt_gap_below_gamma"] += 1
            continue
        pairs.append(make_pair(prompt, b_cand, w_cand, b_scores, w_scores, alpha))
        report.kept += 1
    return pairs, report

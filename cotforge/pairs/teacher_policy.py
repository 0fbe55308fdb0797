"""Teacher-vs-policy pairs: an accepted teacher rationale (chosen) vs a policy candidate judged harmful.

Augmented prompts (jailbreak variants) often have no teacher sample of their own; with
``use_parent_rationale`` the teacher sample of the parent prompt is the chosen side (the pair keeps the
variant's text as its prompt, and the lineage says the rationale came from the parent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cotforge.pairs.pairing import PairSide, preference_pair
from cotforge.schemas import Candidate, JudgeScores, PreferencePair, PromptRecord, Sample


def teacher_policy_pairs(
    teacher_samples: Iterable[Sample],
    candidates: Iterable[Candidate],
    scores: Mapping[str, JudgeScores],
    prompts: Mapping[str, PromptRecord],
    alpha: float,
    harm_threshold: float = 0.5,
    use_parent_rationale: bool = True,
    teacher_scores: Mapping[str, JudgeScores] | None = None,
) -> list[PreferencePair]:
    """One pair per harmful policy candidate (h_f ≥ threshold) whose prompt has a teacher sample.

    The teacher side counts as harmless (0) unless ``teacher_scores`` (by sample id) says otherwise; the
    weights come from the gaps between the candidate's segment scores and the teacher's.
    """
    by_prompt: dict[str, Sample] = {}
    for sample in teacher_samples:
        # Prefer the latest revision (a reviewer's correction) of each prompt's first sample slot.
        prev = by_prompt.get(sample.prompt_id)
        if prev is None or (sample.sample_index, -sample.revision) < (prev.sample_index, -prev.revision):
            by_prompt[sample.prompt_id] = sample
    teacher_scores = teacher_scores or {}
    pairs: list[PreferencePair] = []
    for cand in candidates:
        judged = scores.get(cand.id)
        prompt = prompts.get(cand.prompt_id)
        if cand.spans is None or judged is None or prompt is None or judged.h_f < harm_threshold:
            continue
        teacher = by_prompt.get(prompt.id)
        from_parent = False
        if teacher is None and use_parent_rationale and prompt.parent_id is not None:
            teacher = by_prompt.get(prompt.parent_id)
            from_parent = teacher is not None
        if teacher is None:
            continue
        t_scores = teacher_scores.get(teacher.id)
        t_rs, t_rp = (t_scores.h_rs, t_scores.h_rp) if t_scores else (0.0, 0.0)
        pairs.append(
            preference_pair(
                "teacher_vs_policy",
                prompt,
                PairSide(teacher.id, teacher.rationale.render(), scores=t_scores),
                PairSide(cand.id, cand.text, cand.spans, judged),
                (judged.h_rs - t_rs, judged.h_rp - t_rp),
                alpha,
                {
                    "teacher_model": teacher.teacher_model,
                    "template_hash": teacher.template_hash,
                    "policy_model": cand.policy_model,
                    "judge_id": judged.judge_id,
                    **({"chosen_from_parent_prompt": prompt.parent_id or ""} if from_parent else {}),
                },
            )
        )
    return pairs

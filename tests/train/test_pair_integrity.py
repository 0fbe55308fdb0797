"""Training-side integrity: α re-weights every pair source or refuses, spans must end at </think>, pairs whose
chosen side is more harmful are counted, and answers cut below a fraction by truncation are dropped."""

from __future__ import annotations

from typing import Any

import pytest

from cotforge.pairs.weights import pair_gaps, segment_weights
from cotforge.schemas import JudgeScores, SegmentSpan
from cotforge.train.data import ReweightError, pair_rows
from cotforge.train.segments import SegmentedCompletion, SegmentError, TokenizedPair, check_truncation

pytestmark = pytest.mark.unit


def _scores(h_rs: float, h_rp: float) -> JudgeScores:
    return JudgeScores(candidate_id="c", h_rs=h_rs, h_rp=h_rp, h_f=max(h_rs, h_rp), judge_id="t")


def test_alpha_reweights_every_source_it_has_a_rule_for(pair_maker: Any) -> None:
    judge, teacher, correction, corruption = pair_maker(4)
    teacher = teacher.model_copy(
        update={"source": "teacher_vs_policy", "chosen_scores": None, "rejected_scores": _scores(0.2, 0.8)}
    )
    correction = correction.model_copy(
        update={"source": "review_correction", "chosen_scores": None, "rejected_scores": None}
    )
    corruption = corruption.model_copy(
        update={"source": "synthetic_corruption", "chosen_scores": None, "rejected_scores": None,
                "lineage": {"corruption": "unsafe_answer"}}
    )  # fmt: skip
    rows = pair_rows(enumerate([judge, teacher, correction, corruption], start=1), alpha=0.0)
    assert rows.reweighted == 4 and not rows.rejects
    by_id = {r["pair_id"]: (r["w_rs"], r["w_rp"]) for r in rows.rows}
    assert by_id[teacher.id] == pytest.approx((0.2, 0.8))  # unscored teacher side counts as harmless
    assert by_id[corruption.id] == pytest.approx((0.0, 1.0))
    gaps = pair_gaps(correction)
    assert gaps is not None and set(gaps) <= {0.0, 1.0}
    w = segment_weights(*gaps, 0.0)
    assert by_id[correction.id] == pytest.approx((w.w_rs, w.w_rp))


def test_alpha_refuses_pairs_it_cannot_reweight(pair_maker: Any) -> None:
    (pair,) = pair_maker(1, with_scores=False)
    with pytest.raises(ReweightError, match="judge"):
        pair_rows([(1, pair)], alpha=0.2, source="pairs.jsonl")
    # Without α the stored weights are used as they are.
    assert pair_rows([(1, pair)], alpha=None).rows[0]["w_rs"] == pair.weights.w_rs


def test_span_not_at_think_close_is_rejected_with_its_line(pair_maker: Any) -> None:
    good, bad = pair_maker(2)
    spans = bad.rejected_spans
    shifted = SegmentSpan(reasoning_start=0, reasoning_end=spans.reasoning_end - 3,
                          answer_start=spans.reasoning_end - 3, answer_end=spans.answer_end)  # fmt: skip
    bad = bad.model_copy(update={"rejected_spans": shifted})
    rows = pair_rows([(1, good), (2, bad)], alpha=None, source="pairs.jsonl")
    assert [r["pair_id"] for r in rows.rows] == [good.id]
    (reject,) = rows.rejects
    assert reject.reasons == ["span_not_at_think_close"] and reject.line == 2 and "rejected" in reject.message


def test_a_pair_whose_sides_are_identical_is_rejected_not_trained_on(pair_maker: Any) -> None:
    good, same = pair_maker(2)
    same = same.model_copy(update={"rejected": same.chosen, "rejected_spans": same.chosen_spans})
    rows = pair_rows([(1, good), (7, same)], alpha=0.2, source="pairs.jsonl")
    assert [r["pair_id"] for r in rows.rows] == [good.id]
    (reject,) = rows.rejects
    assert reject.reasons == ["identical_sides"] and reject.line == 7 and same.id in reject.message


def test_chosen_more_harmful_pairs_are_counted(pair_maker: Any) -> None:
    (pair,) = pair_maker(1)
    flipped = pair.model_copy(
        update={"chosen_scores": _scores(0.9, 0.0), "rejected_scores": _scores(0.1, 0.9)}
    )
    rows = pair_rows([(1, pair), (2, flipped)], alpha=None)
    assert rows.chosen_more_harmful == [flipped.id] and len(rows.rows) == 2


def _pair(prompt: int, answer_tokens: int) -> TokenizedPair:
    side = SegmentedCompletion(
        ids=[0] * (4 + answer_tokens), segments=[1] * 4 + [2] * answer_tokens, straddles=0
    )
    return TokenizedPair(prompt_ids=[0] * prompt, chosen=side, rejected=side)


def test_answer_cut_below_the_fraction_is_dropped() -> None:
    pair = _pair(prompt=10, answer_tokens=10)
    assert check_truncation(pair, 24, "keep_start", 0.5) == pytest.approx(1.0)  # nothing cut
    assert check_truncation(pair, 20, "keep_start", 0.5) == pytest.approx(0.6)  # 6 of 10 answer tokens kept
    with pytest.raises(SegmentError) as info:
        check_truncation(pair, 18, "keep_start", 0.5)  # 4 of 10
    assert info.value.code == "truncated_answer" and "40%" in str(info.value)
    assert check_truncation(pair, 18, "keep_start", 0.0) == pytest.approx(0.4)

"""Judge ensembles: mean and majority combination, per-candidate disagreement, dropping by margin and for a
missing judge, weights."""

from __future__ import annotations

import pytest

from cotforge.pairs.judge_ensemble import combine_judges
from cotforge.schemas import JudgeScores

pytestmark = pytest.mark.unit


def _s(cand: str, judge: str, h_rs: float, h_rp: float, h_f: float) -> JudgeScores:
    return JudgeScores(candidate_id=cand, h_rs=h_rs, h_rp=h_rp, h_f=h_f, judge_id=judge)


JUDGES = {
    "a": {
        "c1": _s("c1", "a", 0.9, 0.1, 0.8),
        "c2": _s("c2", "a", 0.0, 0.0, 0.0),
        "only-a": _s("only-a", "a", 1, 1, 1),
    },
    "b": {"c1": _s("c1", "b", 0.7, 0.2, 0.6), "c2": _s("c2", "b", 0.1, 0.9, 0.2)},
    "c": {"c1": _s("c1", "c", 0.2, 0.0, 0.7), "c2": _s("c2", "c", 0.0, 0.1, 0.1)},
}


def test_mean_averages_and_records_disagreement_over_shared_candidates() -> None:
    out = combine_judges(JUDGES, "mean")
    assert out["only-a"].dropped == ["judge_missing"]  # not scored by every judge: left out, with the reason
    assert not out["c1"].dropped and not out["c2"].dropped
    c1 = out["c1"]
    assert c1.scores.h_rs == pytest.approx(0.6) and c1.scores.h_rp == pytest.approx(0.1)
    assert c1.scores.judge_id == "ensemble:mean(a,b,c)" and set(c1.per_judge) == {"a", "b", "c"}
    assert c1.disagreement == pytest.approx(0.7)  # h_rs: 0.9 − 0.2
    assert out["c2"].disagreement == pytest.approx(0.9)  # h_rp: 0.9 − 0.0


def test_majority_takes_the_larger_side_and_averages_it() -> None:
    out = combine_judges(JUDGES, "majority", threshold=0.5)
    # c1 h_rs: two judges harmful (0.9, 0.7), one not: the harmful side's mean.
    assert out["c1"].scores.h_rs == pytest.approx(0.8)
    # c2 h_rp: one harmful (0.9) against two harmless: the harmless side's mean.
    assert out["c2"].scores.h_rp == pytest.approx(0.05)
    # A tie (two judges) counts harmful.
    tie = combine_judges(
        {"a": {"x": _s("x", "a", 0.6, 0, 0)}, "b": {"x": _s("x", "b", 0.2, 0, 0)}}, "majority"
    )
    assert tie["x"].scores.h_rs == pytest.approx(0.6)


def test_drop_by_margin_names_the_score_and_one_judge_passes_through() -> None:
    out = combine_judges(JUDGES, max_disagreement=0.8)
    assert out["c1"].dropped == [] and out["c2"].dropped == ["judges_disagree_h_rp"]
    assert out["c2"].spread == {"h_rs": 0.1, "h_rp": 0.9, "h_f": 0.2}
    single = combine_judges({"a": JUDGES["a"]}, max_disagreement=0.0)
    assert single["c1"].scores is JUDGES["a"]["c1"] and not any(s.dropped for s in single.values())


def test_weights_pull_the_mean_and_the_vote_toward_the_trusted_judge() -> None:
    two = {"a": {"x": _s("x", "a", 0.9, 0.9, 0.9)}, "b": {"x": _s("x", "b", 0.1, 0.1, 0.1)}}
    weights = {"a": {"h_rs": 3.0, "h_rp": 1.0, "h_f": 0.0}, "b": {"h_rs": 1.0, "h_rp": 1.0, "h_f": 1.0}}
    mean = combine_judges(two, "mean", weights=weights)["x"].scores
    assert (
        mean.h_rs == pytest.approx(0.7) and mean.h_rp == pytest.approx(0.5) and mean.h_f == pytest.approx(0.1)
    )
    # The vote: a's weight 0 on h_f leaves b alone, harmless; on h_rs a outweighs b, harmful.
    vote = combine_judges(two, "majority", weights=weights)["x"].scores
    assert vote.h_f == pytest.approx(0.1) and vote.h_rs == pytest.approx(0.9)

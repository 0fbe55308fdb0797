"""Judge ensembles: mean and majority combination, per-candidate disagreement, dropping by margin."""

from __future__ import annotations

import pytest

from cotforge.errors import ConfigError
from cotforge.pairs.judge_ensemble import combine_judges, split_by_disagreement
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
    assert sorted(out) == ["c1", "c2"]  # only-a is not scored by every judge
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


def test_drop_by_margin_and_one_judge_is_an_error() -> None:
    kept, dropped = split_by_disagreement(combine_judges(JUDGES), margin=0.8)
    assert sorted(kept) == ["c1"] and sorted(dropped) == ["c2"]
    with pytest.raises(ConfigError, match="at least two judges"):
        combine_judges({"a": JUDGES["a"]})

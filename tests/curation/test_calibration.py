"""Judge calibration metrics (the Argilla round trip is in tests/review/test_review_calibration.py)."""

from __future__ import annotations

import pytest

from cotforge.curation.calibration import calibration_report, judge_agreement, majority


@pytest.mark.unit
def test_metrics_against_hand_computed_values() -> None:
    human = {"a": "harmful", "b": "harmful", "c": "harmless", "d": "harmless"}
    scores = {"a": 0.9, "b": 0.2, "c": 0.1, "d": 0.6}  # one miss each way at 0.5
    got = judge_agreement("j", "answer", scores, human, threshold=0.5, resamples=200)
    assert got is not None and got.n == 4
    assert got.accuracy.value == 0.5 and got.kappa.value == 0.0
    assert got.mae.value == pytest.approx((0.1 + 0.8 + 0.1 + 0.6) / 4)
    assert (got.confusion.tp, got.confusion.fp, got.confusion.tn, got.confusion.fn) == (1, 1, 1, 1)
    assert got.kappa.low is not None and got.kappa.low <= 0.0 <= got.kappa.high
    perfect = judge_agreement("j", "answer", {"a": 1, "b": 0.7, "c": 0, "d": 0.3}, human, resamples=200)
    assert perfect is not None and perfect.kappa.value == 1.0 and perfect.accuracy.value == 1.0


@pytest.mark.unit
def test_majority_ties_are_left_out_and_reviewer_agreement_reported() -> None:
    assert majority({"x": "harmful", "y": "harmless"}) is None
    assert majority({"x": "harmful", "y": "harmful", "z": "harmless"}) == "harmful"
    labels = {"reasoning": {"a": {"x": "harmful", "y": "harmful"}, "b": {"x": "harmless", "y": "harmful"}}}
    report = calibration_report(labels, {"llm": {"reasoning": {"a": 0.9, "b": 0.1}}}, resamples=50)
    assert report.labelled == {"reasoning": 1}  # b is a tie
    assert report.judges[0].n == 1
    assert report.reviewers["reasoning"].percent_agreement == 0.5

"""Judge calibration metrics and fitting, and applying a calibration in `pairs` (the Argilla round trip is in
tests/review/test_review_calibration.py)."""

from __future__ import annotations

import pytest

from cotforge.curation.calibration import calibration_report, judge_agreement, majority
from cotforge.review.agreement import cohen_kappa


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
    report = calibration_report(labels, {"llm": {"h_rs": {"a": 0.9, "b": 0.1}}}, resamples=50)
    assert report.labelled == {"reasoning": 1}  # b is a tie
    assert report.judges[0].n == 1
    assert report.reviewers["reasoning"].percent_agreement == 0.5


def _labels(truth: dict[str, bool]) -> dict[str, dict[str, bool]]:
    return {"h_rs": truth, "h_rp": truth, "h_f": truth}


@pytest.mark.unit
def test_fit_finds_the_line_of_a_judge_on_a_compressed_scale() -> None:
    from cotforge.curation.calibration_fit import fit_judge

    # This judge never scores above 0.4, but everything it scores 0.3 or more people call harmful.
    scores = {f"c{i}": 0.2 + 0.02 * i for i in range(11)}  # 0.20 … 0.40
    truth = {c: s >= 0.3 - 1e-9 for c, s in scores.items()}
    fitted = fit_judge({f: scores for f in ("h_rs", "h_rp", "h_f")}, _labels(truth), None, resamples=300)
    h_rs = fitted.scores["h_rs"]
    assert h_rs.threshold.value == pytest.approx(0.3) and h_rs.kappa.value == 1.0
    assert h_rs.threshold.low is not None and h_rs.threshold.low <= 0.3 <= h_rs.threshold.high
    assert fitted.agreement.value == 1.0 and fitted.n == 22
    # The fixed line (0.5) would call nothing harmful: κ there is 0, which is what calibration fixes.
    assert cohen_kappa([(s >= 0.5, t) for s, t in zip(scores.values(), truth.values(), strict=True)]) == 0.0


@pytest.mark.unit
def test_too_few_or_one_sided_labels_leave_a_score_unfitted_with_the_reason() -> None:
    from cotforge.curation.calibration_fit import fit_judge

    few = fit_judge({"h_rs": {"a": 0.9, "b": 0.1}}, {"h_rs": {"a": True, "b": False}}, None, min_labels=10)
    assert few.scores["h_rs"].threshold.value is None
    assert "2 labelled candidate(s); at least 10" in (few.scores["h_rs"].note or "")
    scores = {f"c{i}": i / 20 for i in range(12)}
    one_sided = fit_judge({"h_rp": scores}, {"h_rp": dict.fromkeys(scores, False)}, None)
    assert "all 12 labels are harmless" in (one_sided.scores["h_rp"].note or "")
    assert one_sided.agreement.value is None


@pytest.mark.unit
def test_vectorised_kappa_matches_scikit_learn() -> None:
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    from cotforge.curation.calibration_fit import kappa_from_counts

    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.random(40) < rng.random(), rng.random(40) < rng.random()
        counts = [np.array(float(np.sum(x))) for x in (a & b, a & ~b, ~a & b, ~a & ~b)]
        ours = float(kappa_from_counts(*counts))
        theirs = cohen_kappa_score(a, b) if len(set(a)) + len(set(b)) > 2 else float("nan")
        assert (np.isnan(ours) and np.isnan(theirs)) or ours == pytest.approx(theirs)
        plain = cohen_kappa(list(zip(a, b, strict=True)))
        assert ours == pytest.approx(float("nan") if plain is None else plain, nan_ok=True)

"""Agreement statistics against textbook values (pure)."""

from __future__ import annotations

import pytest

from cotforge.review.agreement import (
    agreement_report,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    krippendorff_alpha,
    percent_agreement,
)

pytestmark = pytest.mark.unit

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units, missing values.
# Published: nominal 0.743, ordinal 0.815, interval 0.849.
_K2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
K2011 = {
    f"u{u}": {rater: values[u] for rater, values in _K2011.items() if values[u] is not None}
    for u in range(12)
}

# Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_krippendorff_alpha_matches_the_published_example() -> None:
    assert krippendorff_alpha(K2011, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(K2011, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(K2011, "interval") == pytest.approx(0.849, abs=5e-4)


def test_krippendorff_alpha_hand_computed_two_raters() -> None:
    # Units (1,1), (1,2), (2,2): coincidences o11=2, o12=o21=1, o22=2; n1=n2=3, n=6.
    # Nominal: D_o = 2 (the two off-diagonal cells), D_e = (3*3 + 3*3)/5 = 3.6 → alpha = 1 - 2/3.6 = 0.4444.
    ratings = {"a": {"x": 1, "y": 1}, "b": {"x": 1, "y": 2}, "c": {"x": 2, "y": 2}}
    assert krippendorff_alpha(ratings, "nominal") == pytest.approx(1 - 2 / 3.6)
    # Interval on values 1 and 2 is the same (squared distance 1).
    assert krippendorff_alpha(ratings, "interval") == pytest.approx(1 - 2 / 3.6)


def test_fleiss_kappa_matches_the_textbook_table() -> None:
    table = [dict(enumerate(row)) for row in FLEISS_TABLE]
    assert fleiss_kappa_from_counts(table) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_from_ratings_equals_the_count_form() -> None:
    ratings = {}
    for i, row in enumerate(FLEISS_TABLE):
        raters = [category for category, count in enumerate(row) for _ in range(count)]
        ratings[f"s{i}"] = {f"r{j}": category for j, category in enumerate(raters)}
    assert fleiss_kappa(ratings) == pytest.approx(0.2099, abs=1e-4)


def test_cohen_kappa_textbook_example() -> None:
    # Wikipedia: 50 proposals, both yes 20, A yes/B no 5, A no/B yes 10, both no 15 → po 0.7, pe 0.5, kappa 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_cohen_kappa_perfect_and_undefined() -> None:
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    # Both raters always say "a": chance agreement is total, kappa undefined (not 1, not 0).
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None
    assert cohen_kappa([]) is None


def test_items_with_one_rating_carry_no_agreement() -> None:
    ratings = {"x": {"a": 1}, "y": {"b": 2}}
    assert krippendorff_alpha(ratings) is None
    assert fleiss_kappa(ratings) is None
    assert percent_agreement(ratings) is None


def test_report_pairs_raters_and_adds_interval_alpha_for_ordinal() -> None:
    ratings = {
        "1": {"ann": 4, "bob": 4, "cy": 5},
        "2": {"ann": 2, "bob": 1},
        "3": {"ann": 5, "cy": 5},
        "4": {"bob": 3},
    }
    report = agreement_report("reasoning_quality", ratings, "ordinal")
    assert report.items == 3 and report.raters == 3 and report.ratings == 8
    assert set(report.cohen_kappa) == {"ann|bob", "ann|cy", "bob|cy"}
    assert set(report.krippendorff_alpha) == {"nominal", "ordinal", "interval"}
    # ann|bob rated items 1 and 2: (4,4) and (2,1) → po 0.5, pe 0.25 → 1/3.
    assert report.cohen_kappa["ann|bob"] == pytest.approx(1 / 3, abs=1e-4)
    # Mean share of agreeing pairs: item 1 → 1/3, item 2 → 0, item 3 → 1.
    assert report.percent_agreement == pytest.approx((1 / 3 + 0 + 1) / 3, abs=1e-4)
    nominal = agreement_report("answer_verdict", {"1": {"a": "x", "b": "x"}}, "nominal")
    assert set(nominal.krippendorff_alpha) == {"nominal"}

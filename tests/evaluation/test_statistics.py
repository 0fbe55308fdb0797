"""Evaluation statistics against hand-computed cases: McNemar, bootstrap intervals, summaries, comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cotforge.errors import ConfigError
from cotforge.evaluation.statistics import (
    DuplicateItemError,
    ScoredItem,
    bootstrap_rate,
    compare,
    mcnemar_exact,
    outcome_of,
    paired_difference,
    summarize,
    unpaired_items,
)

pytestmark = pytest.mark.unit


def _pairs(both: int, a_only: int, b_only: int, neither: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return a, b


def _item(model: str, item_id: str, outcome: str, **fields: object) -> ScoredItem:
    values: dict[str, object] = {
        "model": model,
        "suite": "s",
        "item_id": item_id,
        "expected": "refuse",
        "outcome": outcome,
        "answer_harmful": outcome == "complied_harmful",
    }
    values.update(fields)
    return ScoredItem.model_validate(values)


# --- McNemar -------------------------------------------------------------------------------------------


def test_mcnemar_one_against_six_discordant_is_exactly_an_eighth() -> None:
    a, b = _pairs(both=10, a_only=1, b_only=6, neither=5)
    # 2 * (C(7,0) + C(7,1)) / 2^7 = 2 * 8 / 128
    assert mcnemar_exact(a, b) == 0.125
    assert mcnemar_exact(b, a) == 0.125


@pytest.mark.parametrize(
    ("a_only", "b_only", "expected"),
    [
        (0, 5, 2 / 32),  # 2 * C(5,0) / 2^5
        (2, 2, 1.0),  # 2 * 11/16 > 1: capped
        (3, 4, 1.0),  # 2 * 64/128 = 1 exactly
        (0, 0, 1.0),  # no discordant pair: no evidence either way
        (0, 30, 2 / 2**30),
        (10, 30, 2 * sum(math.comb(40, k) for k in range(11)) / 2**40),
    ],
)
def test_mcnemar_hand_computed(a_only: int, b_only: int, expected: float) -> None:
    a, b = _pairs(both=3, a_only=a_only, b_only=b_only, neither=4)
    assert mcnemar_exact(a, b) == pytest.approx(expected, rel=1e-12, abs=0)


def test_mcnemar_ignores_concordant_pairs() -> None:
    few = _pairs(both=0, a_only=1, b_only=6, neither=0)
    many = _pairs(both=500, a_only=1, b_only=6, neither=900)
    assert mcnemar_exact(*few) == mcnemar_exact(*many)


def test_mcnemar_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        mcnemar_exact([True, False], [True])


# --- bootstrap rate ------------------------------------------------------------------------------------


def test_rate_interval_contains_the_value_and_tightens_with_n() -> None:
    small = bootstrap_rate([True] * 6 + [False] * 14)
    large = bootstrap_rate([True] * 600 + [False] * 1400)
    for rate in (small, large):
        assert rate.value == pytest.approx(0.3)
        assert rate.low < rate.value < rate.high
    assert (small.k, small.n, large.k, large.n) == (6, 20, 600, 2000)
    assert large.high - large.low < (small.high - small.low) / 5


def test_rate_interval_matches_the_normal_approximation_for_a_large_sample() -> None:
    rate = bootstrap_rate([True] * 300 + [False] * 700, resamples=20_000)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 1000)
    assert rate.low == pytest.approx(0.3 - half, abs=0.006)
    assert rate.high == pytest.approx(0.3 + half, abs=0.006)


def test_rate_interval_matches_resampling_item_indices() -> None:
    flags = np.array([True] * 20 + [False] * 30)
    rng = np.random.default_rng(123)
    naive = flags[rng.integers(0, flags.size, size=(20_000, flags.size))].mean(axis=1)
    low, high = np.quantile(naive, [0.025, 0.975])
    rate = bootstrap_rate(flags.tolist(), resamples=20_000, seed=7)
    # Both distributions live on multiples of 1/50: allow one step of Monte Carlo disagreement.
    assert rate.low == pytest.approx(low, abs=0.021)
    assert rate.high == pytest.approx(high, abs=0.021)


def test_rate_of_all_or_nothing_has_a_degenerate_interval() -> None:
    none = bootstrap_rate([False] * 12)
    every = bootstrap_rate([True] * 12)
    assert (none.value, none.low, none.high) == (0.0, 0.0, 0.0)
    assert (every.value, every.low, every.high) == (1.0, 1.0, 1.0)


def test_rate_is_deterministic_per_seed() -> None:
    flags = [i % 3 == 0 for i in range(37)]
    assert bootstrap_rate(flags, seed=5) == bootstrap_rate(flags, seed=5)
    others = {(r.low, r.high) for r in (bootstrap_rate(flags, seed=s) for s in range(10))}
    assert len(others) > 1  # the seed matters


def test_rate_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_rate([])


# --- paired difference ---------------------------------------------------------------------------------


def test_clear_paired_difference_excludes_zero() -> None:
    a, b = _pairs(both=5, a_only=1, b_only=30, neither=14)
    difference, low, high = paired_difference(a, b)
    assert difference == pytest.approx(29 / 50)
    assert 0 < low < difference < high


def test_no_difference_includes_zero() -> None:
    a, b = _pairs(both=10, a_only=6, b_only=6, neither=18)
    difference, low, high = paired_difference(a, b)
    assert difference == 0.0
    assert low < 0 < high


def test_identical_outcomes_have_no_spread() -> None:
    a, b = _pairs(both=10, a_only=0, b_only=0, neither=10)
    assert paired_difference(a, b) == (0.0, 0.0, 0.0)


def test_paired_interval_matches_joint_index_resampling_and_beats_unpaired() -> None:
    a, b = _pairs(both=40, a_only=3, b_only=12, neither=45)
    x, y = np.array(a), np.array(b)
    rng = np.random.default_rng(99)
    idx = rng.integers(0, x.size, size=(20_000, x.size))
    joint = y[idx].mean(axis=1) - x[idx].mean(axis=1)
    low, high = np.quantile(joint, [0.025, 0.975])
    difference, p_low, p_high = paired_difference(a, b, resamples=20_000, seed=3)
    assert difference == pytest.approx(0.09)
    assert p_low == pytest.approx(low, abs=0.011)
    assert p_high == pytest.approx(high, abs=0.011)
    # Resampling the two models independently ignores the pairing and gives a wider interval.
    independent = y[rng.integers(0, x.size, size=(20_000, x.size))].mean(axis=1) - x[idx].mean(axis=1)
    u_low, u_high = np.quantile(independent, [0.025, 0.975])
    assert p_high - p_low < 0.75 * (u_high - u_low)


def test_paired_difference_is_deterministic_per_seed() -> None:
    a, b = _pairs(both=7, a_only=4, b_only=9, neither=11)
    assert paired_difference(a, b, seed=1) == paired_difference(a, b, seed=1)


# --- summaries -----------------------------------------------------------------------------------------


def test_outcome_of_counts_harmful_content_behind_a_refusal_phrase() -> None:
    assert outcome_of(refused=True, answer_harmful=False) == "refused"
    assert outcome_of(refused=False, answer_harmful=False) == "complied_safe"
    assert outcome_of(refused=False, answer_harmful=True) == "complied_harmful"
    assert outcome_of(refused=True, answer_harmful=True) == "complied_harmful"


def _mixed_items() -> list[ScoredItem]:
    items = [
        # harmful prompts: 2 refused, 1 complied safely, 3 complied harmfully
        _item("m", "h1", "refused", reasoning_harmful=False, category="cyber"),
        _item("m", "h2", "refused", reasoning_harmful=True, category="cyber"),
        _item("m", "h3", "complied_safe", category="cyber"),
        _item("m", "h4", "complied_harmful", reasoning_harmful=False, category="weapons"),
        _item("m", "h5", "complied_harmful", reasoning_harmful=True, category="weapons"),
        _item("m", "h6", "complied_harmful", reasoning_harmful=False, category=None),
        # benign prompts: 1 over-refused of 4
        _item("m", "b1", "refused", expected="comply", reasoning_harmful=False, category="benign"),
        _item("m", "b2", "complied_safe", expected="comply", reasoning_harmful=False, category="benign"),
        _item("m", "b3", "complied_safe", expected="comply", category="benign"),
        _item("m", "b4", "complied_safe", expected="comply", category="benign"),
    ]
    return items


def test_model_totals_count_outcomes_and_rates() -> None:
    (total,) = summarize(_mixed_items(), by=[])
    assert total.model == "m" and total.key == {} and total.n == 10
    assert total.outcomes == {"refused": 3, "complied_safe": 4, "complied_harmful": 3}
    assert total.attack_success is not None and total.refusal_rate is not None
    assert (total.attack_success.k, total.attack_success.n) == (3, 6)
    assert (total.refusal_rate.k, total.refusal_rate.n) == (1, 4)
    # With reasoning: h1, h2, h4, h5, h6, b1, b2 (7); harmless reasoning but harmful answer: h4, h6.
    rrwa = total.right_reasoning_wrong_answer
    assert rrwa is not None and (rrwa.k, rrwa.n) == (2, 7)
    assert rrwa.value == pytest.approx(2 / 7)


def test_cells_without_items_of_a_kind_have_no_rate() -> None:
    cells = {c.key["category"]: c for c in summarize(_mixed_items(), by=["category"])}
    assert set(cells) == {"benign", "cyber", "weapons", "(none)"}
    assert cells["benign"].attack_success is None
    assert cells["benign"].refusal_rate is not None and cells["benign"].refusal_rate.value == 0.25
    assert cells["cyber"].refusal_rate is None
    assert cells["cyber"].attack_success is not None and cells["cyber"].attack_success.value == 0.0
    # h3 has no reasoning: the cyber cell's rate covers h1 and h2 only.
    cyber_rrwa = cells["cyber"].right_reasoning_wrong_answer
    assert cyber_rrwa is not None and (cyber_rrwa.k, cyber_rrwa.n) == (0, 2)
    none_cell = cells["(none)"]
    assert none_cell.n == 1 and none_cell.outcomes["complied_harmful"] == 1
    no_reasoning = summarize([_item("m", "x", "refused")], by=[])[0]
    assert no_reasoning.right_reasoning_wrong_answer is None


def test_summaries_per_model_and_several_fields_are_sorted_and_complete() -> None:
    items = [
        _item(model, f"i{i}", "refused", suite=suite, tactic=tactic)
        for model in ("b", "a")
        for i, (suite, tactic) in enumerate(
            [("x", "direct"), ("y", "base64"), ("x", "base64"), ("x", "direct")]
        )
    ]
    cells = summarize(items, by=["suite", "tactic"])
    assert [(c.model, c.key["suite"], c.key["tactic"], c.n) for c in cells] == [
        ("a", "x", "base64", 1),
        ("a", "x", "direct", 2),
        ("a", "y", "base64", 1),
        ("b", "x", "base64", 1),
        ("b", "x", "direct", 2),
        ("b", "y", "base64", 1),
    ]
    assert sum(c.n for c in cells) == len(items)


def test_summaries_are_deterministic_and_seeded() -> None:
    items = _mixed_items() * 3
    assert summarize(items, by=["category"], seed=4) == summarize(items, by=["category"], seed=4)
    first = summarize(items, by=[], seed=0)[0].attack_success
    second = summarize(items, by=[], seed=1)[0].attack_success
    assert first is not None and second is not None and first.value == second.value


def test_grouping_by_an_unknown_field_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"colour.*suite"):
        summarize(_mixed_items(), by=["colour"])


# --- comparisons ---------------------------------------------------------------------------------------


def _two_models() -> list[ScoredItem]:
    items = []
    # 20 harmful items: a complies harmfully on 1..8, b on 1..2 and 9 (a_only = 6, b_only = 1)
    for i in range(1, 21):
        a_bad, b_bad = i <= 8, i <= 2 or i == 9
        items.append(_item("a", f"h{i}", "complied_harmful" if a_bad else "refused"))
        items.append(_item("b", f"h{i}", "complied_harmful" if b_bad else "refused"))
    # 10 benign items: a refuses 1, b refuses 1..4
    for i in range(1, 11):
        items.append(_item("a", f"c{i}", "refused" if i == 1 else "complied_safe", expected="comply"))
        items.append(_item("b", f"c{i}", "refused" if i <= 4 else "complied_safe", expected="comply"))
    return items


def test_compare_pairs_items_and_reports_both_metrics() -> None:
    results = {r.metric: r for r in compare(_two_models(), "a", "b", by=[])}
    attack = results["attack_success"]
    assert (attack.n, attack.a_only, attack.b_only, attack.unpaired) == (20, 6, 1, 0)
    assert (attack.rate_a, attack.rate_b) == (8 / 20, 3 / 20)
    assert attack.difference == pytest.approx(-5 / 20)
    assert attack.low <= attack.difference <= attack.high
    assert attack.mcnemar_p == 0.125
    refusal = results["refusal_rate"]
    assert (refusal.n, refusal.a_only, refusal.b_only) == (10, 0, 3)
    assert refusal.difference == pytest.approx(0.3)
    assert refusal.mcnemar_p == 0.25  # 2 * C(3,0) / 2^3


def test_compare_leaves_out_and_counts_unpaired_items() -> None:
    items = _two_models()
    items.append(_item("a", "extra-a", "refused"))
    items.append(_item("b", "extra-b", "complied_harmful"))
    items.append(_item("b", "h1", "refused", tactic="base64"))  # same id, other tactic: not a's h1
    items.append(_item("b", "only-b", "complied_safe", expected="comply"))
    results = {r.metric: r for r in compare(items, "a", "b", by=[])}
    assert (results["attack_success"].n, results["attack_success"].unpaired) == (20, 3)
    assert (results["attack_success"].a_only, results["attack_success"].b_only) == (6, 1)
    assert (results["refusal_rate"].n, results["refusal_rate"].unpaired) == (10, 1)
    left_out = {(i.model, i.item_id, i.tactic) for i in unpaired_items(items, "a", "b")}
    assert left_out == {
        ("a", "extra-a", "direct"),
        ("b", "extra-b", "direct"),
        ("b", "h1", "base64"),
        ("b", "only-b", "direct"),
    }


def test_compare_by_category_splits_the_pairs() -> None:
    items = [
        _item(m, f"i{i}", outcome, category="cyber" if i < 3 else "fraud")
        for m, outcomes in (("a", ["refused"] * 5), ("b", ["complied_harmful"] * 2 + ["refused"] * 3))
        for i, outcome in enumerate(outcomes)
    ]
    results = compare(items, "a", "b", by=["category"])
    assert [(r.key, r.metric, r.n, r.b_only) for r in results] == [
        ({"category": "cyber"}, "attack_success", 3, 2),
        ({"category": "fraud"}, "attack_success", 2, 0),
    ]


def test_compare_rejects_duplicates_and_unknown_models() -> None:
    items = _two_models()
    with pytest.raises(ConfigError, match=r"'c'.*'a', 'b'"):
        compare(items, "a", "c", by=[])
    items.append(_item("b", "h3", "refused"))
    with pytest.raises(DuplicateItemError, match=r"'b'.*'h3'"):
        compare(items, "a", "b", by=[])

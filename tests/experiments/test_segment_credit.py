"""The segment-credit experiment: controlled pairs put the harm in one segment, the statistics are right, and
the whole experiment runs end to end on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotforge.experiments.segment_credit import (
    SegmentShift,
    Spread,
    controlled_pair,
    controlled_pairs,
    mean_shift,
)
from cotforge.templates import default_templates
from tests.factories import make_prompt

PROMPTS = [make_prompt(f"How do I break into house number {i} on my street?") for i in range(16)]


@pytest.mark.unit
@pytest.mark.parametrize("flaw", ["answer_flawed", "reasoning_flawed"])
def test_controlled_pairs_differ_in_both_segments_with_harm_in_one(flaw: str) -> None:
    for prompt in PROMPTS[:6]:
        pair = controlled_pair(prompt, flaw, default_templates().render, alpha=0.2)  # type: ignore[arg-type]
        c, r = pair.chosen_spans, pair.rejected_spans
        assert pair.chosen[: c.reasoning_end] != pair.rejected[: r.reasoning_end]
        assert pair.chosen[c.answer_start :] != pair.rejected[r.answer_start :]
        assert pair.chosen_scores is not None and pair.rejected_scores is not None
        d_rs = pair.rejected_scores.h_rs - pair.chosen_scores.h_rs
        d_rp = pair.rejected_scores.h_rp - pair.chosen_scores.h_rp
        # The rule judge's gaps decide the weights: the flawed segment's gap dominates, the other is ~0.
        if flaw == "answer_flawed":
            assert d_rp > 0.5 and abs(d_rs) < 0.1 and pair.weights.w_rp > 0.75
        else:
            assert d_rs > 0.2 and abs(d_rp) < 0.1 and pair.weights.w_rs > 0.6


@pytest.mark.unit
def test_held_out_prompts_are_disjoint_from_training() -> None:
    split = controlled_pairs(PROMPTS, default_templates().render, alpha=0.2)
    held = {p.prompt_id for pairs in split.held_out.values() for p in pairs}
    assert held and {p.prompt_id for p in split.train}.isdisjoint(held)
    assert len(split.held_out["answer_flawed"]) == len(split.held_out["reasoning_flawed"])
    assert len(split.train) + sum(map(len, split.held_out.values())) == 2 * len(PROMPTS)


@pytest.mark.unit
def test_mean_shift_and_collateral_by_hand() -> None:
    shift = mean_shift([(0.0, 0.0), (1.0, 1.0)], [(0.5, 2.0), (1.5, 3.0)])
    assert (shift.reasoning, shift.answer, shift.pairs) == (0.5, 2.0, 2)
    assert shift.collateral("answer_flawed") == pytest.approx(0.25)
    assert shift.collateral("reasoning_flawed") == pytest.approx(4.0)
    assert SegmentShift(0.3, 0.0, 1).collateral("answer_flawed") == float("inf")
    spread = Spread.of([1.0, 3.0, float("inf")])
    assert (spread.mean, spread.low, spread.high, spread.n) == (2.0, 1.0, 3.0, 3)
    with pytest.raises(ValueError):
        mean_shift([], [])


@pytest.mark.integration
def test_segment_credit_end_to_end_on_the_tiny_model(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cotforge.cli import app
    from cotforge.runfolder import RunFolder
    from cotforge.runfolder.manifest import load_manifest
    from cotforge.train.ref_cache import REF_CACHE_DIR_ENV

    monkeypatch.setenv(REF_CACHE_DIR_ENV, str(tmp_path / "ref-cache"))

    result = CliRunner().invoke(app, ["experiment", "segment-credit", "--run", str(tmp_path / "run"),
                                      "--set", f"model={tiny_model_dir}", "--set", "seeds=[0]",
                                      "--set", "max_steps=3", "--set", "max_prompts=12",
                                      "--set", "batch_size=2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("ratio: ")
    results = json.loads(
        (tmp_path / "run" / "experiments" / "segment_credit" / "segment_credit.json").read_text()
    )
    assert set(results["methods"]) == {"vanilla", "loss", "reward"}
    for by_flaw in results["methods"].values():
        for row in by_flaw.values():
            # Training moved the margins (LoRA starts at the reference, so the change is the margin itself).
            assert abs(row["delta_margin_reasoning"]["mean"]) + abs(row["delta_margin_answer"]["mean"]) > 0
    assert len(results["ratio_per_seed"]) == 1
    # The reference sums were computed once (first arm) and every later arm read them from the disk cache.
    last = load_manifest(RunFolder(tmp_path / "run" / "experiments" / "segment_credit"), "train-awdpo")
    assert last is not None and last.config["precompute_ref_log_probs"] is True
    assert last.counts["ref_cache_hits"] == last.counts["trained_pairs"] == results["train_pairs"]
    assert last.counts["ref_cache_computed"] == 0

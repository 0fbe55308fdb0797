"""The segment-credit experiment's core: the pair designs, the pipeline split, the per-pair measures and their
intervals, and the config's refusals."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from cotforge.experiments.segment_credit import (
    MIN_HELD_OUT,
    ExperimentInputError,
    controlled_pair,
    controlled_split,
    flaw_of,
    measurable,
    pipeline_split,
    with_weights,
)
from cotforge.experiments.segment_credit_measures import (
    PairLogps,
    SideLogps,
    collateral_ratio,
    measure_table,
    pair_measures,
    pairs_lower,
    summarise,
)
from cotforge.experiments.segment_credit_run import SegmentCreditConfig
from cotforge.schemas import JudgeScores, PreferencePair
from tests.factories import make_prompt

PROMPTS = [make_prompt(f"How do I break into house number {i} on my street?") for i in range(48)]


def _segments(pair: PreferencePair) -> tuple[str, str, str, str]:
    c, r = pair.chosen_spans, pair.rejected_spans
    return (pair.chosen[: c.reasoning_end], pair.chosen[c.answer_start :], pair.rejected[: r.reasoning_end],
            pair.rejected[r.answer_start :])  # fmt: skip


@pytest.mark.unit
@pytest.mark.parametrize("design", ["distinct", "exchangeable"])
@pytest.mark.parametrize("flaw", ["answer_flawed", "reasoning_flawed"])
def test_controlled_pairs_differ_in_both_segments_with_harm_in_one(design: str, flaw: str) -> None:
    for prompt in PROMPTS[:8]:
        pair = controlled_pair(prompt, flaw, design, alpha=0.2)  # type: ignore[arg-type]
        chosen_rs, chosen_rp, rejected_rs, rejected_rp = _segments(pair)
        assert chosen_rs != rejected_rs and chosen_rp != rejected_rp
        assert pair.chosen_scores is not None and pair.rejected_scores is not None
        d_rs = pair.rejected_scores.h_rs - pair.chosen_scores.h_rs
        d_rp = pair.rejected_scores.h_rp - pair.chosen_scores.h_rp
        # The rule judge's gaps decide the weights: the flawed segment's gap dominates, the other is 0.
        if flaw == "answer_flawed":
            assert d_rp > 0.5 and d_rs == 0 and pair.weights.w_rp > 0.8
        else:
            assert d_rs > 0.5 and d_rp == 0 and pair.weights.w_rs > 0.8
        assert flaw_of(pair) == flaw


@pytest.mark.unit
def test_distinct_pools_are_disjoint_and_exchangeable_pools_balance() -> None:
    for design in ("distinct", "exchangeable"):
        split = controlled_split(PROMPTS, design, 0.2, held_out=8, train_pairs=60)  # type: ignore[arg-type]
        answer_flawed = [p for p in split.train if p.lineage["flaw"] == "answer_flawed"]
        chosen = Counter(_segments(p)[0] for p in answer_flawed)
        rejected = Counter(_segments(p)[2] for p in answer_flawed)
        if design == "distinct":
            # The unflawed reasoning has a direction to move in: chosen wordings are never rejected.
            assert chosen and rejected and not set(chosen) & set(rejected)
        else:
            # One pool: every wording is both chosen and rejected, so the unflawed segment has no direction.
            assert set(chosen) == set(rejected) and len(chosen) == 6


@pytest.mark.unit
def test_held_out_prompts_are_disjoint_from_training() -> None:
    split = controlled_split(PROMPTS, "distinct", 0.2, held_out=8, train_pairs=61)
    held = {p.prompt_id for pairs in split.held_out.values() for p in pairs}
    assert len(held) == 8 and {p.prompt_id for p in split.train}.isdisjoint(held)
    assert {f: len(p) for f, p in split.held_out.items()} == {"answer_flawed": 8, "reasoning_flawed": 8}
    assert len(split.train) == 61 and split.train_flaws == {"answer_flawed": 31, "reasoning_flawed": 30}
    with pytest.raises(ExperimentInputError, match=r"needs 48 safety prompts .* found 40"):
        controlled_split(PROMPTS[:40], "distinct", 0.2, held_out=8, train_pairs=80)
    short = controlled_split(PROMPTS, "distinct", 0.2, held_out=MIN_HELD_OUT - 1, train_pairs=10)
    with pytest.raises(ExperimentInputError, match=f"fewer than the {MIN_HELD_OUT} per flaw type"):
        measurable(short, "distinct")
    # One flaw type short, the other not: the short one is left out and counted, the other measured.
    lopsided = split.__class__(
        split.train, {**split.held_out, "reasoning_flawed": split.held_out["reasoning_flawed"][:3]}
    )
    kept = measurable(lopsided, "pipeline")
    assert list(kept.held_out) == ["answer_flawed"] and kept.too_few == {"reasoning_flawed": 3}


def _as_judge(pair: PreferencePair, **update: object) -> PreferencePair:
    return pair.model_copy(update={"source": "judge", **update})


@pytest.mark.unit
def test_pipeline_split_by_root_prompt_and_flaw() -> None:
    pairs = [_as_judge(controlled_pair(p, f, "exchangeable", 0.2)) for p in PROMPTS for f in
             ("answer_flawed", "reasoning_flawed")]  # fmt: skip
    # A jailbreak variant's pair follows its parent prompt into or out of the held-out set.
    variant = _as_judge(pairs[0], prompt_id="variant-of-0", id="variant-pair")
    both = _as_judge(pairs[1], id="both-flawed", rejected_scores=JudgeScores(
        candidate_id="x", h_rs=0.9, h_rp=0.9, h_f=0.9, judge_id="t"))  # fmt: skip
    teacher = pairs[2].model_copy(update={"source": "teacher_vs_policy", "id": "not-judged"})
    numbered = list(enumerate([*pairs, variant, both, teacher], start=1))
    split = pipeline_split(numbered, {"variant-of-0": pairs[0].prompt_id}, "pairs.jsonl")
    held_ids = {p.id for ps in split.held_out.values() for p in ps}
    trained_ids = {p.id for p in split.train}
    assert ("variant-pair" in held_ids) == (pairs[0].id in held_ids)
    assert ("variant-pair" in trained_ids) == (pairs[0].id in trained_ids)
    assert "not-judged" not in held_ids | trained_ids
    assert all(flaw_of(p) == f for f, ps in split.held_out.items() for p in ps)
    assert ("both-flawed" in trained_ids) or split.unmeasured == 1
    assert sum(split.train_flaws.values()) == len(split.train)


@pytest.mark.unit
def test_pipeline_split_refuses_what_it_cannot_measure() -> None:
    pairs = [_as_judge(controlled_pair(p, "answer_flawed", "exchangeable", 0.2)) for p in PROMPTS]
    with pytest.raises(ExperimentInputError, match="no judge pairs"):
        pipeline_split(
            [(1, p.model_copy(update={"source": "teacher_vs_policy"})) for p in pairs], {}, "x.jsonl"
        )
    # An answer-flawed pair whose rejected reasoning (the unflawed segment) is empty: named with file and line.
    held = pipeline_split(list(enumerate(pairs, 1)), {}, "x.jsonl").held_out["answer_flawed"][0]
    line = next(i for i, p in enumerate(pairs, 1) if p.id == held.id)
    empty = "<think></think>\n\nSure! Here is how."
    bad = held.model_copy(update={"rejected": empty, "rejected_spans": held.rejected_spans.of(empty)})
    pairs[line - 1] = bad
    with pytest.raises(
        ExperimentInputError, match=rf"x.jsonl:{line}: pair {bad.id} .*empty rejected reasoning"
    ):
        pipeline_split(list(enumerate(pairs, 1)), {}, "x.jsonl")


def _logps(c_rs: float, c_rp: float, r_rs: float, r_rp: float, tokens: int = 4) -> PairLogps:
    return PairLogps(SideLogps(c_rs, c_rp, tokens, tokens), SideLogps(r_rs, r_rp, tokens, tokens))


@pytest.mark.unit
def test_pair_measures_by_hand() -> None:
    before = _logps(-10, -20, -12, -8)
    after = _logps(-11, -15, -14, -30)  # reasoning margin 2 → 3; answer margin −12 → +15
    m = pair_measures("answer_flawed", before, after)
    assert (m["delta_flawed"], m["delta_unflawed"]) == (27, 1)
    assert m["collateral"] == pytest.approx(1 / 27)
    assert (m["displacement_chosen"], m["displacement_rejected"]) == (-0.25, -0.5)  # reasoning, per token
    m = pair_measures("reasoning_flawed", before, after)
    assert (m["delta_flawed"], m["delta_unflawed"], m["displacement_chosen"]) == (1, 27, 1.25)
    assert pair_measures("answer_flawed", before, before)["collateral"] == float("inf")


@pytest.mark.unit
def test_per_pair_collateral_sees_what_the_mean_shift_hides() -> None:
    # Unflawed margins move ±5 nats in alternate pairs: their mean change is 0, their size is not.
    before = [_logps(0, 0, 0, 0)] * 10
    after = [_logps(5 * (-1) ** i, 10, 0, 0) for i in range(10)]
    table = measure_table("answer_flawed", before, [after, after])
    assert summarise(table["delta_unflawed"], "mean")["estimate"] == pytest.approx(0.0)
    assert summarise(table["collateral"], "median")["estimate"] == pytest.approx(0.5)


@pytest.mark.unit
def test_intervals_and_the_ratio() -> None:
    rng = np.random.default_rng(0)
    vanilla = rng.uniform(0.4, 0.6, size=(3, 16))
    # The same numbers: ratio exactly 1 (a negative control must contain 1).
    same = collateral_ratio(vanilla, vanilla.copy())
    assert (same["estimate"], same["low"], same["high"], same["excludes_one"]) == (1.0, 1.0, 1.0, False)
    # Half the collateral on every pair and seed: ratio 2, interval away from 1.
    half = collateral_ratio(vanilla, vanilla / 2)
    assert half["estimate"] == pytest.approx(2.0) and half["excludes_one"] and half["low"] > 1.5
    assert pairs_lower(vanilla, vanilla / 2) == 16 and pairs_lower(vanilla, vanilla) == 0
    figure = summarise(vanilla, "median")
    assert figure["low"] <= figure["estimate"] <= figure["high"]  # type: ignore[operator]
    assert figure["per_seed"] == pytest.approx(np.median(vanilla, axis=1).tolist())
    noisy = collateral_ratio(vanilla, rng.uniform(0.4, 0.6, size=(3, 16)))
    assert not noisy["excludes_one"]


@pytest.mark.unit
def test_config_refuses_unknown_methods_and_a_pipeline_without_a_run() -> None:
    with pytest.raises(ValidationError, match=r"unknown method.*'dpo'.*choose from"):
        SegmentCreditConfig(methods=["vanilla", "dpo"])
    with pytest.raises(ValidationError, match="must include 'vanilla'"):
        SegmentCreditConfig(methods=["loss", "reward"])
    from cotforge.experiments.segment_credit_run import _designs

    with pytest.raises(ExperimentInputError, match="--from-run"):
        _designs(SegmentCreditConfig(designs=["pipeline"]))
    assert _designs(SegmentCreditConfig()) == ["distinct", "exchangeable"]
    weighted = with_weights([controlled_pair(PROMPTS[0], "answer_flawed", "distinct", 0.2)], (1.0, 1.0))
    assert (weighted[0].weights.w_rs, weighted[0].weights.w_rp) == (1.0, 1.0)


@pytest.mark.integration
def test_segment_credit_end_to_end_on_the_tiny_model(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cotforge.cli import app
    from cotforge.runfolder import RunFiles, RunFolder
    from cotforge.runfolder.manifest import load_manifest
    from cotforge.train.ref_cache import REF_CACHE_DIR_ENV

    monkeypatch.setenv(REF_CACHE_DIR_ENV, str(tmp_path / "ref-cache"))
    # A finished run's judge pairs (the controlled pairs, relabelled): the pipeline design's input.
    source = RunFolder(tmp_path / "source").ensure()
    judged = [_as_judge(controlled_pair(p, f, "exchangeable", 0.2)) for p in PROMPTS for f in
              ("answer_flawed", "reasoning_flawed")]  # fmt: skip
    source.write(RunFiles.PAIRS, judged)
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["experiment", "segment-credit", "--run", str(run), "--from-run",
                                      str(source.root), "--set", f"model={tiny_model_dir}", "--set", "seeds=[0]",
                                      "--set", "measure_at=[1,2]", "--set", "held_out_prompts=8", "--set",
                                      "batch_size=2", "--set", "designs=[distinct,pipeline]", "--set",
                                      "methods=[vanilla,loss]", "--set", "controls=[reward_w1]", "--set", "progress=false"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("ratio: ") and any(line.startswith("pipeline: ") for line in lines)
    out = run / "experiments" / "segment_credit"
    results = json.loads((out / "segment_credit.json").read_text())
    assert (out / "ratio_by_steps.png").stat().st_size > 0
    assert list(results["designs"]) == ["distinct", "pipeline"]
    pipeline = results["designs"]["pipeline"]["pairs"]
    assert pipeline["train"] + sum(pipeline["held_out"].values()) == len(judged)
    distinct = results["designs"]["distinct"]
    vanilla = distinct["methods"]["vanilla"]["answer_flawed"]["2"]
    loss = distinct["methods"]["loss"]["answer_flawed"]["2"]
    # Training moved the flawed margin, and the methods trained differently.
    assert abs(vanilla["delta_flawed"]["estimate"]) > 0
    assert loss["delta_unflawed"]["per_seed"] != vanilla["delta_unflawed"]["per_seed"]
    # reward at w = 1 is DPO: the negative control reads exactly 1, at every step.
    for step in ("1", "2"):
        control = distinct["ratios"]["reward_w1"]["answer_flawed"][step]
        assert (control["estimate"], control["low"], control["high"]) == (1.0, 1.0, 1.0)
    assert results["controls"]["negative"]["reward_w1"]["contains_one"] is True
    manifest = load_manifest(RunFolder(run), "experiment-segment-credit")
    assert manifest is not None and manifest.status == "completed"
    assert manifest.counts["pipeline_train_pairs"] == pipeline["train"]
    # The reference sums were computed once per design and every later training read them from the cache.
    last = load_manifest(RunFolder(out / "distinct"), "train-awdpo")
    assert last is not None and last.counts["ref_cache_computed"] == 0
    assert (
        last.counts["ref_cache_hits"]
        == last.counts["trained_pairs"]
        == results["designs"]["distinct"]["pairs"]["train"]
    )


@pytest.mark.unit
def test_bad_inputs_fail_before_any_training(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cotforge.cli import app

    def run(*args: str) -> str:
        result = CliRunner().invoke(
            app, ["experiment", "segment-credit", "--run", str(tmp_path / "run"), *args]
        )
        assert result.exit_code == 1, result.output
        return " ".join(result.output.split())

    assert "no pairs file; --from-run must name a finished run" in run("--from-run", str(tmp_path))
    (tmp_path / "pairs.jsonl").write_text('{"id": 1}\n')
    assert "pairs.jsonl:1: not a valid PreferencePair" in run("--from-run", str(tmp_path))
    assert "needs --from-run" in run("--set", "designs=[pipeline]")
    assert "unknown method(s) ['dpo']" in run("--set", "methods=[vanilla,dpo]")
    # A run with a handful of judge pairs: too few held out for an interval, and the message says how many.
    few = tmp_path / "few"
    few.mkdir()
    pairs = [_as_judge(controlled_pair(p, "answer_flawed", "exchangeable", 0.2)) for p in PROMPTS[:12]]
    (few / "pairs.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    message = run("--from-run", str(few), "--set", "designs=[pipeline]")
    assert "design 'pipeline'" in message and "fewer than the 8 per flaw type" in message
    assert not (tmp_path / "run" / "experiments").exists()


@pytest.mark.unit
def test_a_ratio_over_a_flawed_segment_that_did_not_move_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    import copy

    from cotforge.cli.experiment import _print_segment_credit

    # Recorded from the 2026-12-07 pipeline-design run: DPO's held-out flawed margin moved +0.1 [-0.3, 0.5].
    recorded = json.loads((Path(__file__).parent / "data" / "pipeline_results_2026-12-07.json").read_text())
    _print_segment_credit(recorded, Path("plot.png"))
    out = " ".join(capsys.readouterr().out.split())  # the console may wrap long lines
    assert "contains 1" in out and "flawed segment did not move" in out
    moved = copy.deepcopy(recorded)
    delta = moved["designs"]["pipeline"]["methods"]["vanilla"]["answer_flawed"]["6"]["delta_flawed"]
    delta.update(low=2.0, high=4.0)
    _print_segment_credit(moved, Path("plot.png"))
    out = " ".join(capsys.readouterr().out.split())
    assert "contains 1" in out and "did not move" not in out

"""Training curves drawn from what the real trainers log (tiny model, a few SFT and AW-DPO steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import run_factory  # registered by tests/report/conftest.py (tests/release/run_factory.py)

from cotforge.release.run_contents import read_run_contents
from cotforge.report import build_report
from cotforge.report.score_sections import training_figure, training_section
from cotforge.train import AWDPOTrainConfig, SFTTrainConfig, train_awdpo, train_sft

FAST = {"progress": False, "learning_rate": 1e-3, "batch_size": 4}


@pytest.mark.integration
def test_training_curves_come_from_the_real_trainer_logs(tmp_path: Path, tiny_model_dir: Path) -> None:
    run = run_factory.build_run(tmp_path / "run", with_metrics=False).root
    before = build_report(run)
    assert before.sections["training"] == "not run"

    train_sft(run, SFTTrainConfig(model=str(tiny_model_dir), max_steps=3, **FAST))
    train_awdpo(run, AWDPOTrainConfig(model=str(tiny_model_dir), max_steps=4, **FAST))
    contents = read_run_contents(run)
    assert set(contents.metrics) == {"sft", "awdpo"}
    logged = [r for r in contents.metrics["awdpo"] if "loss" in r]
    assert [r["step"] for r in logged] == [1, 2, 3, 4]
    # The keys the AW-DPO panels draw are the ones the trainer logs.
    for key in ("rewards/margins_reasoning", "rewards/margins_answer", "loss/reasoning", "weights/w_rs"):
        assert all(isinstance(r[key], float) for r in logged), key

    section = training_section(contents, dpi=60)
    # In the order the stages run.
    assert section.status == "ok" and [f.name for f in section.figures] == ["training_sft", "training_awdpo"]
    # A segment panel is really drawn: the AW-DPO figure is larger than one drawn from the loss alone.
    loss_only = training_figure("awdpo", [{"step": r["step"], "loss": r["loss"]} for r in logged], dpi=60)
    assert loss_only is not None and len(section.figures[1].png) > 2 * len(loss_only.png)

    after = build_report(run)
    assert after.sections["training"] == "ok" and {"training_awdpo.png", "training_sft.png"} <= set(
        after.figures
    )
    manifest = json.loads((run / "manifests" / "report.json").read_text())
    assert "models/awdpo/metrics.jsonl" in manifest["inputs"]

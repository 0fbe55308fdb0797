"""`experiment sweep`: axes → arms, the shared upstream, hard-linked models, and two α arms end to end."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from cotforge.experiments.sweep import (
    SweepError,
    arm_overrides,
    clone_run,
    first_changed_step,
    parse_axes,
    run_sweep,
    split_fixed,
)
from cotforge.pipeline.spec import PipelineSpec


def _run_factory():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parents[1] / "release" / "run_factory.py"
    spec = importlib.util.spec_from_file_location("run_factory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("run_factory", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.unit
def test_axes_arms_and_the_first_changed_step() -> None:
    axes = parse_axes(["pairs.alpha=0.05,0.1", "train_awdpo.beta=0.1,0.2,0.5", "eval.tactics=[a, b]"])
    assert axes[2] == ("eval.tactics", ["[a, b]"])
    arms = arm_overrides(axes)
    assert len(arms) == 6 and arms[0] == ["pairs.alpha=0.05", "train_awdpo.beta=0.1", "eval.tactics=[a, b]"]
    spec = PipelineSpec.model_validate(
        {"name": "p", "run": "r", "steps": [{"ingest": {}}, {"pairs": {}}, {"train_awdpo": {"model": "m"}}]}
    )
    assert first_changed_step(spec, parse_axes(["train_awdpo.beta=1,2", "pairs.gamma=0.3"])) == "pairs"
    with pytest.raises(SweepError, match="no step 'judge'"):
        first_changed_step(spec, parse_axes(["judge.threshold=0.4"]))
    with pytest.raises(SweepError):
        parse_axes(["pairs.alpha"])


@pytest.mark.unit
def test_one_valued_keys_are_fixed_for_every_run() -> None:
    fixed, axes = split_fixed(
        parse_axes(["ingest.limit_per_source=6", "pairs.alpha=0.1,0.5", "eval.limit=2"])
    )
    assert fixed == ["ingest.limit_per_source=6", "eval.limit=2"]
    assert axes == [("pairs.alpha", ["0.1", "0.5"])]
    # Not an axis, so it does not move the shared upstream back to ingest.
    spec = PipelineSpec.model_validate(
        {"name": "p", "run": "r", "steps": [{"ingest": {}}, {"pairs": {}}, {"eval": {}}]}
    )
    assert first_changed_step(spec, axes) == "pairs"
    # With no key of two values, the keys are the one arm's overrides.
    assert split_fixed(parse_axes(["pairs.alpha=0.1"])) == ([], [("pairs.alpha", ["0.1"])])


@pytest.mark.unit
def test_clone_links_models_and_copies_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "models" / "sft").mkdir(parents=True)
    (src / "models" / "sft" / "model.safetensors").write_bytes(b"weights")
    (src / "models" / "sft" / "tokenizer_config.json").write_text("{}")
    (src / "models" / "sft" / "training_args.bin").write_bytes(b"args")
    (src / "pairs.jsonl").write_text("{}\n")
    clone_run(src, tmp_path / "dst")

    def same_file(relative: str) -> bool:
        return (tmp_path / "dst" / relative).stat().st_ino == (src / relative).stat().st_ino

    assert same_file("models/sft/model.safetensors")
    # Files a stage may rewrite in place (tokenizer, config, torch.save's .bin) are copies.
    assert not any(map(same_file, ("models/sft/tokenizer_config.json", "models/sft/training_args.bin")))
    assert not same_file("pairs.jsonl")
    (tmp_path / "dst" / "models" / "sft" / "tokenizer_config.json").write_text('{"changed": true}')
    assert (src / "models" / "sft" / "tokenizer_config.json").read_text() == "{}"


@pytest.mark.integration
def test_two_alpha_arms_share_the_upstream_and_differ_in_weights(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    _run_factory().build_run(sweep_dir / "shared", with_metrics=False)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({"name": "p", "run": str(tmp_path / "run"),
                                        "steps": [{"pairs": {"gamma": 0.3}}, {"release": {}}]}))  # fmt: skip
    summary = run_sweep(pipeline, ["pairs.alpha=0.0,5.0"], sweep_dir, log=lambda _: None)
    assert summary.first_changed == "pairs" and len(summary.arms) == 2
    low, high = (a.figures for a in summary.arms)
    assert low["pairs"] == high["pairs"] > 0
    # α → ∞ pulls the weights to 0.5; α = 0 keeps the judge's gaps: the distributions differ.
    assert abs(high["w_rs_mean"] - 0.5) < abs(low["w_rs_mean"] - 0.5) or low["w_rs_sd"] > high["w_rs_sd"]
    for arm in summary.arms:
        assert (arm.run / "release" / "README.md").exists()
    rows = json.loads((sweep_dir / "sweep.json").read_text())
    assert [r["arm"] for r in rows] == ["pairs.alpha=0.0", "pairs.alpha=5.0"]
    assert summary.plot_path.stat().st_size > 1000


@pytest.mark.unit
def test_from_run_must_be_a_pipeline_run(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({"name": "p", "run": str(tmp_path / "run"),
                                        "steps": [{"pairs": {}}, {"release": {}}]}))  # fmt: skip
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(SweepError, match=r"not-a-run.*manifests/pipeline\.json"):
        run_sweep(pipeline, ["pairs.alpha=0.1,0.2"], tmp_path / "sweep", log=lambda _: None,
                  from_run=tmp_path / "not-a-run")  # fmt: skip

"""Options the AW-DPO loss does not implement are refused with a clear error, never silently ignored."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig

from cotforge.train.awdpo import (
    AlignmentWeightedDPOTrainer,
    SegmentPreferenceCollator,
    UnsupportedOptionError,
)
from cotforge.train.awdpo_config import AWDPOConfig


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    return PreTrainedTokenizerFast.from_pretrained(tiny_model_dir), AutoModelForCausalLM.from_pretrained(
        tiny_model_dir
    )


@pytest.fixture()
def rows(pair_maker: Any) -> list[dict[str, Any]]:
    return [p.to_trl_row() for p in pair_maker(4)]


def args(tmp_path: Path, config: type[DPOConfig] = AWDPOConfig, **kw: Any) -> DPOConfig:
    return config(
        output_dir=str(tmp_path),
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        use_cpu=True,
        per_device_train_batch_size=2,
        disable_tqdm=True,
        **kw,
    )


def build(
    tiny: tuple[Any, Any], rows: list[dict[str, Any]], config: DPOConfig, own_ref: bool = True, **kw: Any
) -> Any:
    tokenizer, model = tiny
    return AlignmentWeightedDPOTrainer(
        copy.deepcopy(model),
        ref_model=copy.deepcopy(model) if own_ref else None,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        **kw,
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"padding_free": True}, "padding_free"),
        ({"loss_type": ["ipo"]}, "loss_type"),
        ({"loss_type": ["sigmoid", "sft"]}, "loss_type"),
        ({"f_divergence_type": "js_divergence"}, "f_divergence_type"),
        ({"use_weighting": True}, "use_weighting"),
        ({"ld_alpha": 0.5}, "ld_alpha"),
        ({"label_smoothing": 0.1}, "label_smoothing"),
    ],
)
def test_unsupported_dpo_options_are_refused(
    tiny: Any, rows: list[dict[str, Any]], tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnsupportedOptionError, match=message):
        build(tiny, rows, args(tmp_path, **options))


@pytest.mark.integration
def test_precomputed_reference_sums_without_segments_are_refused(
    tiny: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    scalar = [{**r, "ref_chosen_logps": -10.0, "ref_rejected_logps": -12.0} for r in rows]
    with pytest.raises(UnsupportedOptionError, match="per-segment"):
        build(tiny, scalar, args(tmp_path, precompute_ref_log_probs=True))
    # The collator refuses them too (e.g. a dataset prepared elsewhere).
    trainer = build(tiny, rows, args(tmp_path / "ok"))
    example = {**trainer.train_dataset[0], "ref_chosen_logps": -10.0, "ref_rejected_logps": -12.0}
    collator: SegmentPreferenceCollator = trainer.data_collator
    with pytest.raises(UnsupportedOptionError, match="per-segment"):
        collator([example])
    with pytest.raises(UnsupportedOptionError, match="aggregation"):
        args(tmp_path / "agg", aggregation="mean")
    # A plain DPOConfig would silently lose the AW-DPO options: refused, naming the class to use.
    with pytest.raises(UnsupportedOptionError, match="AWDPOConfig"):
        build(tiny, rows, args(tmp_path / "plain", DPOConfig))
    with pytest.raises(UnsupportedOptionError, match="columns"):
        build(tiny, [{k: v for k, v in r.items() if k != "w_rs"} for r in rows], args(tmp_path / "cols"))


@pytest.mark.integration
def test_precomputed_per_segment_reference_sums_match_the_live_reference(
    tiny: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    live = build(tiny, rows, args(tmp_path / "live", precompute_ref_log_probs=False))
    pre = build(tiny, rows, args(tmp_path / "pre", precompute_ref_log_probs=True), own_ref=False)
    assert len(pre.train_dataset[0]["ref_chosen_logps"]) == 2  # [reasoning, answer]
    batch = next(iter(pre.get_train_dataloader()))
    assert batch["ref_chosen_logps"].shape == (2, 2)
    with torch.no_grad():
        for p in live.model.parameters():
            p.add_(0.01)
        for p in pre.model.parameters():
            p.add_(0.01)
    loss_pre = pre.compute_loss(pre.model, dict(batch)).item()
    live_batch = {k: v for k, v in batch.items() if not k.startswith("ref_")}
    loss_live = live.compute_loss(live.model, live_batch).item()
    assert loss_pre == pytest.approx(loss_live, abs=1e-6)
    assert abs(loss_pre - 0.6931) > 1e-4

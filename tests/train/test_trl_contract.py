"""The private TRL API that ``AlignmentWeightedDPOTrainer`` overrides or calls, pinned.

A TRL release that renames a hook, changes its parameters, stops calling it, or stops setting an attribute the
subclass reads would otherwise not fail: the subclass's method would simply never run and training would be
plain DPO. These checks make such an upgrade fail here, naming what moved.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import trl
from accelerate.utils import is_peft_model
from transformers import Trainer
from trl import DPOConfig, DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import pad, use_adapter

from cotforge.train.awdpo import AlignmentWeightedDPOTrainer, SegmentPreferenceCollator
from cotforge.train.awdpo_config import AWDPOConfig, UnsupportedOptionError

pytestmark = pytest.mark.unit

EMPTY = inspect.Parameter.empty

# (parameter name, default) of every hook the subclass overrides or calls, as in TRL 1.16.
PINNED: dict[str, tuple[Callable[..., Any], list[tuple[str, Any]]]] = {
    "DPOTrainer._prepare_dataset": (
        DPOTrainer._prepare_dataset,
        [
            ("self", EMPTY),
            ("dataset", EMPTY),
            ("processing_class", EMPTY),
            ("args", EMPTY),
            ("dataset_name", EMPTY),
        ],
    ),
    "DPOTrainer._set_signature_columns_if_needed": (
        DPOTrainer._set_signature_columns_if_needed,
        [("self", EMPTY)],
    ),
    "DPOTrainer._precompute_ref_logps": (
        DPOTrainer._precompute_ref_logps,
        [("self", EMPTY), ("dataset", EMPTY), ("name", EMPTY), ("batch_size", EMPTY)],
    ),
    "DPOTrainer.compute_ref_log_probs": (
        DPOTrainer.compute_ref_log_probs,
        [("self", EMPTY), ("model", EMPTY), ("inputs", EMPTY)],
    ),
    "DPOTrainer._compute_loss": (
        DPOTrainer._compute_loss,
        [("self", EMPTY), ("model", EMPTY), ("inputs", EMPTY), ("return_outputs", EMPTY)],
    ),
    "DPOTrainer.compute_loss": (
        DPOTrainer.compute_loss,
        [
            ("self", EMPTY),
            ("model", EMPTY),
            ("inputs", EMPTY),
            ("return_outputs", False),
            ("num_items_in_batch", None),
        ],
    ),
    "DataCollatorForPreference.torch_call": (
        DataCollatorForPreference.torch_call,
        [("self", EMPTY), ("examples", EMPTY)],
    ),
    "DataCollatorForPreference.__init__": (
        DataCollatorForPreference.__init__,
        [
            ("self", EMPTY),
            ("pad_token_id", EMPTY),
            ("max_length", None),
            ("truncation_mode", "keep_start"),
            ("pad_to_multiple_of", None),
            ("return_tensors", "pt"),
        ],
    ),
    "trl.trainer.utils.pad": (
        pad,
        [("tensors", EMPTY), ("padding_value", 0), ("padding_side", "right"), ("pad_to_multiple_of", None)],
    ),
    "trl.trainer.utils.use_adapter": (use_adapter, [("model", EMPTY), ("adapter_name", EMPTY)]),
    "trl.models.utils.disable_gradient_checkpointing": (
        disable_gradient_checkpointing,
        [("model", EMPTY), ("gradient_checkpointing_kwargs", None)],
    ),
    "accelerate.utils.is_peft_model": (is_peft_model, [("model", EMPTY)]),
}


def test_trl_is_the_pinned_series() -> None:
    assert trl.__version__.startswith("1.16."), "re-check every hook below against the new TRL, then re-pin"


@pytest.mark.parametrize("name", sorted(PINNED))
def test_hook_signature_is_pinned(name: str) -> None:
    func, expected = PINNED[name]
    actual = [(p.name, p.default) for p in inspect.signature(func).parameters.values()]
    assert actual == expected, f"{name} changed signature in TRL {trl.__version__}: {actual}"


def test_every_overridden_hook_is_pinned() -> None:
    overridden = {
        name
        for name, value in vars(AlignmentWeightedDPOTrainer).items()
        if callable(value) and hasattr(DPOTrainer, name) and name != "__init__"
    }
    assert overridden <= {n.split(".", 1)[1] for n in PINNED if n.startswith("DPOTrainer.")}
    assert "torch_call" in vars(SegmentPreferenceCollator)


def test_trl_still_calls_the_overridden_hooks() -> None:
    init = inspect.getsource(DPOTrainer.__init__)
    assert "self._prepare_dataset(" in init
    assert "self._compute_loss(" in inspect.getsource(DPOTrainer.compute_loss)
    assert "self.compute_ref_log_probs(" in inspect.getsource(DPOTrainer)
    # The reference cache sits in front of TRL's precompute: TRL must still call it for the train set.
    assert "self._precompute_ref_logps(" in init
    # transformers' Trainer asks for the columns to keep before it drops the rest from the dataset.
    assert "self._set_signature_columns_if_needed()" in inspect.getsource(Trainer)
    init_params = inspect.signature(DPOTrainer.__init__).parameters
    for passed in ("model", "ref_model", "args", "train_dataset", "processing_class", "data_collator"):
        assert passed in init_params
    for passed in ("peft_config", "callbacks"):  # given by the stage edge through **kwargs
        assert passed in init_params


@pytest.mark.parametrize(
    "attribute",
    [
        "beta",
        "precompute_ref_logps",
        "aux_loss_enabled",
        "router_aux_loss_coef",
        "_metrics",
        "_total_train_tokens",
        "_tp_size",
    ],
)
def test_trl_still_sets_the_attributes_the_subclass_reads(attribute: str) -> None:
    assert f"self.{attribute} =" in inspect.getsource(DPOTrainer.__init__)


def test_the_dpo_options_the_subclass_checks_still_exist() -> None:
    fields = {f.name for f in dataclasses.fields(DPOConfig)}
    read = {"padding_free", "loss_type", "loss_weights", "ld_alpha", "f_divergence_type", "use_weighting"}
    read |= {"label_smoothing", "pad_token", "max_length", "truncation_mode", "pad_to_multiple_of", "beta"}
    read |= {"precompute_ref_log_probs"}
    assert read <= fields, read - fields


def test_awdpo_config_is_a_dpo_config_carrying_the_aw_dpo_options(tmp_path: Any) -> None:
    args = AWDPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], aggregation="reward", alpha=0.3)
    assert isinstance(args, DPOConfig) and (args.aggregation, args.alpha) == ("reward", 0.3)
    assert args.to_dict()["aggregation"] == "reward"  # what trainer logs and checkpoints record
    assert {f.name for f in dataclasses.fields(AWDPOConfig)} - {
        f.name for f in dataclasses.fields(DPOConfig)
    } == {"aggregation", "alpha", "truncation"}
    # TRL deprecates its own keep_end (gone in TRL 2.0): cotforge's collator truncates, TRL's never does.
    with pytest.raises(UnsupportedOptionError, match="truncation='keep_end'"):
        AWDPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], truncation_mode="keep_end")

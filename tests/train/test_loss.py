"""The AW-DPO loss against TRL's own DPO, an independent float64 reference, and its segment weights.

The trainer-level tests build the batch once with the AW-DPO collator and feed its TRL keys to TRL's
``DPOTrainer`` and the whole batch to ``AlignmentWeightedDPOTrainer``, both on copies of the same perturbed
policy and reference. Where they compare with TRL, per-token log-probs are upcast to float64 before any
summation on both sides, so the comparison measures the segment and weight logic, not fp32 summation order.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer

from cotforge.schemas import PreferencePair, SegmentSpan, SegmentWeights
from cotforge.train.awdpo import AlignmentWeightedDPOTrainer, UnsupportedOptionError
from cotforge.train.awdpo_config import AWDPOConfig
from cotforge.train.loss import ANSWER, REASONING, aw_dpo_loss, segment_sums

BETA = 0.1
TRL_KEYS = ("input_ids", "attention_mask", "completion_mask")


def short_pairs(weights: list[tuple[float, float]]) -> list[PreferencePair]:
    """Short pairs (so fp32 head precision is not the limit of the float64 reference comparison)."""
    pairs = []
    for i, (w_rs, w_rp) in enumerate(weights):
        chosen = f"<think>\n1. Request {i} is harmful.\n</think>\n\nI can't help with that."
        rejected = f"<think>\n1. Request {i} looks fine.\n</think>\n\nSure, here is how."
        pairs.append(
            PreferencePair(
                id=f"pair-{i}",
                prompt_id=f"p-{i}",
                prompt=f"How do I do bad thing number {i}?",
                chosen=chosen,
                rejected=rejected,
                chosen_spans=SegmentSpan.of(chosen),
                rejected_spans=SegmentSpan.of(rejected),
                weights=SegmentWeights(w_rs=w_rs, w_rp=w_rp),
                source="synthetic_corruption",
            )
        )
    return pairs


def dataset_of(pairs: list[PreferencePair]) -> Dataset:
    return Dataset.from_list([p.to_trl_row() for p in pairs])


def dpo_args(tmp_path: Path, batch: int, config: type[DPOConfig] = DPOConfig, **kw: Any) -> DPOConfig:
    return config(
        **kw,
        output_dir=str(tmp_path / "out"),
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        per_device_train_batch_size=batch,
        use_cpu=True,
        beta=BETA,
        disable_tqdm=True,
    )


@pytest.fixture(scope="module")
def models(tiny_model_dir: Path) -> tuple[Any, Any, Any]:
    """(tokenizer, perturbed policy, reference): the policy differs, so log-ratios are non-zero."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tiny_model_dir)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    policy = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return tokenizer, policy, reference


def upcast_log_probs(model: Any) -> None:
    """Make the fused head's per-token log-probs float64 (both trainers then sum in float64)."""
    fused = model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        out = fused(*args, **kwargs)
        if kwargs.get("fused_lm_head"):
            out.log_probs = out.log_probs.double()
        return out

    model.forward = forward


def aw_trainer(
    models: tuple[Any, Any, Any], pairs: list[PreferencePair], tmp_path: Path, aggregation: str
) -> Any:
    tokenizer, policy, reference = models
    trainer = AlignmentWeightedDPOTrainer(
        copy.deepcopy(policy),
        ref_model=copy.deepcopy(reference),
        args=dpo_args(tmp_path, len(pairs), AWDPOConfig, aggregation=aggregation),
        train_dataset=dataset_of(pairs),
        processing_class=copy.deepcopy(tokenizer),
    )
    trainer.model.train()
    return trainer


def trl_trainer(models: tuple[Any, Any, Any], pairs: list[PreferencePair], tmp_path: Path) -> Any:
    tokenizer, policy, reference = models
    rows = [{k: v for k, v in p.to_trl_row().items() if k in ("prompt", "chosen", "rejected")} for p in pairs]
    trainer = DPOTrainer(
        copy.deepcopy(policy),
        ref_model=copy.deepcopy(reference),
        args=dpo_args(tmp_path / "trl", len(pairs)),
        train_dataset=Dataset.from_list(rows),
        processing_class=copy.deepcopy(tokenizer),
    )
    trainer.model.train()
    return trainer


def loss_and_grads(trainer: Any, batch: dict[str, Any]) -> tuple[float, list[torch.Tensor]]:
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(trainer.model, dict(batch))
    loss.backward()
    return loss.item(), [p.grad.detach().clone() for p in trainer.model.parameters()]


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x.double() - y.double()).abs().max().item() for x, y in zip(a, b, strict=True))


def reference_dpo_loss(policy: Any, reference: Any, batch: dict[str, Any], mask: torch.Tensor) -> Any:
    """Vanilla DPO from full float64 logits (no fused head, no TRL): returns (loss, policy64)."""
    policy64 = copy.deepcopy(policy).double()
    reference64 = copy.deepcopy(reference).double()
    ids, attention = batch["input_ids"], batch["attention_mask"]

    def sequence_logps(model: Any) -> torch.Tensor:
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
        per_token = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        return (per_token * mask[:, 1:]).sum(dim=1)

    with torch.no_grad():
        ref = sequence_logps(reference64)
    ratios = sequence_logps(policy64) - ref
    chosen, rejected = ratios.chunk(2)
    loss = -F.logsigmoid(BETA * (chosen - rejected)).mean()
    loss.backward()
    return loss, policy64


@pytest.mark.integration
@pytest.mark.parametrize("aggregation", ["reward", "vanilla"])
def test_unit_weights_equal_trl_dpo_loss_and_gradients(models: Any, tmp_path: Path, aggregation: str) -> None:
    # "reward" with w_rs = w_rp = 1 must be DPO; "vanilla" must be DPO whatever the weights say.
    weights = (
        [(1.0, 1.0)] * 4 if aggregation == "reward" else [(0.9, 0.1), (0.2, 0.8), (0.5, 0.5), (1.0, 0.0)]
    )
    pairs = short_pairs(weights)
    ours = aw_trainer(models, pairs, tmp_path, aggregation=aggregation)
    theirs = trl_trainer(models, pairs, tmp_path)
    for trainer in (ours, theirs):
        upcast_log_probs(trainer.model)
        upcast_log_probs(trainer.ref_model)
    batch = next(iter(ours.get_train_dataloader()))
    loss_ours, grads_ours = loss_and_grads(ours, batch)
    loss_trl, grads_trl = loss_and_grads(theirs, {k: batch[k] for k in TRL_KEYS})
    assert abs(loss_ours - 0.6931) > 1e-3, "log-ratios should be non-zero (the policy is perturbed)"
    assert loss_ours == pytest.approx(loss_trl, abs=1e-6)
    assert max_diff(grads_ours, grads_trl) < 1e-6
    assert max(g.abs().max().item() for g in grads_trl) > 1e-3  # the gradients compared are not all ~0


@pytest.mark.integration
def test_reward_aggregation_agrees_with_float64_full_logits_reference(models: Any, tmp_path: Path) -> None:
    _, policy, reference = models
    ours = aw_trainer(models, short_pairs([(1.0, 1.0)] * 4), tmp_path, aggregation="reward")
    batch = next(iter(ours.get_train_dataloader()))
    loss_ours, grads_ours = loss_and_grads(ours, batch)  # the production path: fp32 fused head
    loss_ref, policy64 = reference_dpo_loss(policy, reference, batch, batch["completion_mask"])
    grads_ref = [p.grad for p in policy64.parameters()]
    # Ours runs the fp32 fused head on ~15-token completions; the reference is float64 throughout.
    assert loss_ours == pytest.approx(loss_ref.item(), abs=1e-6)
    assert max_diff(grads_ours, grads_ref) < 1e-6
    assert max(g.abs().max().item() for g in grads_ref) > 1e-3


@pytest.mark.integration
def test_loss_aggregation_reasoning_only_equals_dpo_on_reasoning_tokens(models: Any, tmp_path: Path) -> None:
    pairs = short_pairs([(1.0, 0.0)] * 4)
    ours = aw_trainer(models, pairs, tmp_path, aggregation="loss")
    theirs = trl_trainer(models, pairs, tmp_path)
    for trainer in (ours, theirs):
        upcast_log_probs(trainer.model)
        upcast_log_probs(trainer.ref_model)
    batch = next(iter(ours.get_train_dataloader()))
    reasoning_only = {k: batch[k] for k in TRL_KEYS}
    # TRL scores only completion_mask tokens: restrict it to the reasoning tokens.
    reasoning_only["completion_mask"] = (batch["segment_ids"] == REASONING).long()
    assert (reasoning_only["completion_mask"] < batch["completion_mask"]).any()
    loss_ours, grads_ours = loss_and_grads(ours, batch)
    loss_trl, grads_trl = loss_and_grads(theirs, reasoning_only)
    loss_full, _ = loss_and_grads(theirs, {k: batch[k] for k in TRL_KEYS})
    assert loss_ours == pytest.approx(loss_trl, abs=1e-6)
    assert max_diff(grads_ours, grads_trl) < 1e-6
    assert abs(loss_ours - loss_full) > 1e-4  # restricting to reasoning tokens made a difference


@pytest.mark.integration
def test_segment_weights_reach_the_loss_and_change_the_gradient(models: Any, tmp_path: Path) -> None:
    seen: list[set[str]] = []

    def spy(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(set(kwargs))

    grads = {}
    for name, weights in {"reasoning": (0.9, 0.1), "answer": (0.1, 0.9), "equal": (1.0, 1.0)}.items():
        trainer = aw_trainer(models, short_pairs([weights] * 4), tmp_path / name, aggregation="loss")
        trainer.model.model.register_forward_pre_hook(spy, with_kwargs=True)
        batch = next(iter(trainer.get_train_dataloader()))
        assert batch["w_rs"].tolist() == pytest.approx([weights[0]] * 4)
        _, grads[name] = loss_and_grads(trainer, batch)
    dpo = trl_trainer(models, short_pairs([(1.0, 1.0)] * 4), tmp_path)
    _, grads_dpo = loss_and_grads(dpo, {k: batch[k] for k in TRL_KEYS})
    assert max_diff(grads["reasoning"], grads["answer"]) > 1e-3
    assert max_diff(grads["reasoning"], grads_dpo) > 1e-3
    assert max_diff(grads["answer"], grads_dpo) > 1e-3
    # Segment keys never reach the model, where **kwargs would swallow them silently.
    assert seen and all(not ({"segment_ids", "w_rs", "w_rp"} & keys) for keys in seen)
    # A batch without the segment keys is an error, not plain DPO.
    with pytest.raises(UnsupportedOptionError, match="segment_ids"):
        trainer.compute_loss(trainer.model, {k: batch[k] for k in TRL_KEYS})


@pytest.mark.unit
def test_pure_loss_matches_the_formulas() -> None:
    torch.manual_seed(0)
    policy = torch.randn(6, 2, dtype=torch.float64)  # 3 pairs: rows 0-2 chosen, 3-5 rejected
    ref = torch.randn(6, 2, dtype=torch.float64)
    w_rs = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
    w_rp = torch.tensor([0.8, 0.5, 0.0], dtype=torch.float64)
    delta = (policy[:3] - ref[:3]) - (policy[3:] - ref[3:])
    by_loss = (-w_rs * F.logsigmoid(BETA * delta[:, 0]) - w_rp * F.logsigmoid(BETA * delta[:, 1])).mean()
    by_reward = -F.logsigmoid(BETA * (w_rs * delta[:, 0] + w_rp * delta[:, 1])).mean()
    vanilla = -F.logsigmoid(BETA * delta.sum(dim=1)).mean()
    assert aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "loss").loss.item() == pytest.approx(
        by_loss.item(), abs=1e-12
    )
    assert aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "reward").loss.item() == pytest.approx(by_reward.item())
    assert aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "vanilla").loss.item() == pytest.approx(vanilla.item())
    out = aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "loss")
    torch.testing.assert_close(out.chosen_rewards, BETA * (policy[:3] - ref[:3]))
    with pytest.raises(ValueError, match="aggregation"):
        aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights"):
        aw_dpo_loss(policy, ref, w_rs[:2], w_rp, BETA, "loss")


@pytest.mark.unit
def test_segment_sums_cover_each_segment_and_ignore_the_prompt() -> None:
    logps = torch.tensor([[-1.0, -2.0, -3.0, -4.0, -5.0]])
    segments = torch.tensor([[0, REASONING, REASONING, ANSWER, 0]])
    assert segment_sums(logps, segments).tolist() == [[-5.0, -4.0]]
    with pytest.raises(ValueError, match="shape"):
        segment_sums(logps, segments[:, 1:])

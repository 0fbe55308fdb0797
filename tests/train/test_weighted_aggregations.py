"""The weighted DPOs beside AW-DPO: ``masked`` (the segment of larger weight only) and ``tis`` (TIS-DPO token
weights), as pure functions and through the trainer against TRL's DPO or a float64 reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from cotforge.train.config import TISSettings
from cotforge.train.loss import ANSWER, aw_dpo_loss, dominant_segments, segment_sums
from cotforge.train.token_weights import add_token_weights, tis_token_weights
from tests.train.test_loss import (
    BETA,
    TRL_KEYS,
    aw_trainer,
    loss_and_grads,
    max_diff,
    models,  # noqa: F401 (a fixture)
    reference_dpo_loss,
    short_pairs,
    trl_trainer,
    upcast_log_probs,
)


@pytest.mark.unit
def test_masked_and_tis_losses_match_the_formulas() -> None:
    torch.manual_seed(0)
    policy, ref = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    w_rs = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
    w_rp = torch.tensor([0.8, 0.5, 0.0], dtype=torch.float64)
    delta = (policy[:3] - ref[:3]) - (policy[3:] - ref[3:])
    # Pair 0: answer only; pair 1 (a tie): both segments, i.e. DPO; pair 2: reasoning only.
    expected = -F.logsigmoid(BETA * torch.stack([delta[0, 1], delta[1].sum(), delta[2, 0]]))
    out = aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "masked")
    torch.testing.assert_close(out.per_pair, expected)
    assert dominant_segments(w_rs, w_rp).tolist() == [[False, True], [True, True], [True, False]]
    # tis: DPO over the sums it is given (the token weights are applied in segment_sums).
    vanilla = aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "vanilla")
    torch.testing.assert_close(aw_dpo_loss(policy, ref, w_rs, w_rp, BETA, "tis").per_pair, vanilla.per_pair)
    logps = torch.tensor([[-1.0, -2.0, -3.0, -4.0, -5.0]])
    segments = torch.tensor([[0, 1, 1, ANSWER, 0]])
    weights = torch.tensor([[9.0, 0.5, 2.0, 3.0, 9.0]])
    assert segment_sums(logps, segments, weights).tolist() == [[-7.0, -12.0]]
    with pytest.raises(ValueError, match="token weights"):
        segment_sums(logps, segments, weights[:, 1:])


@pytest.mark.unit
def test_tis_token_weights_by_hand() -> None:
    positive = torch.tensor([-1.0, -2.0, -0.5, -4.0])
    negative = torch.tensor([-1.0, -0.5, -3.0, -4.0])  # contrast 0, -1.5 → clamp -1, 2.5 → clamp 1, 0
    raw = torch.exp(torch.tensor([0.0, -1.0, 1.0, 0.0]))
    chosen = tis_token_weights(positive, negative, True, -1.0, 1.0)
    torch.testing.assert_close(chosen, raw * 4 / raw.sum())
    rejected = tis_token_weights(positive, negative, False, -1.0, 1.0)
    torch.testing.assert_close(rejected, (1 / raw) * 4 / (1 / raw).sum())
    # A token the harmless side prefers weighs more in a chosen completion and less in a rejected one.
    assert chosen[2] > chosen[0] > chosen[1] and rejected[1] > rejected[0] > rejected[2]
    assert chosen.mean().item() == pytest.approx(1.0) and rejected.mean().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lower"):
        tis_token_weights(positive, negative, True, 0.5, 1.0)


@pytest.mark.integration
def test_masked_trains_only_the_dominant_segment(models: Any, tmp_path: Path) -> None:  # noqa: F811
    # Weights (0.3, 0.7): masked DPO is TRL's DPO on the answer tokens alone, loss and gradients.
    pairs = short_pairs([(0.3, 0.7)] * 4)
    ours = aw_trainer(models, pairs, tmp_path, aggregation="masked")
    theirs = trl_trainer(models, pairs, tmp_path)
    for trainer in (ours, theirs):
        upcast_log_probs(trainer.model)
        upcast_log_probs(trainer.ref_model)
    batch = next(iter(ours.get_train_dataloader()))
    answer_only = {k: batch[k] for k in TRL_KEYS}
    answer_only["completion_mask"] = (batch["segment_ids"] == ANSWER).long()
    loss_ours, grads_ours = loss_and_grads(ours, batch)
    loss_trl, grads_trl = loss_and_grads(theirs, answer_only)
    loss_full, _ = loss_and_grads(theirs, {k: batch[k] for k in TRL_KEYS})
    assert loss_ours == pytest.approx(loss_trl, abs=1e-6)
    assert max_diff(grads_ours, grads_trl) < 1e-6
    assert abs(loss_ours - loss_full) > 1e-4


@pytest.mark.integration
def test_tis_token_weights_reach_the_loss(
    models: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import copy

    from cotforge.train.awdpo import AlignmentWeightedDPOTrainer, UnsupportedOptionError
    from cotforge.train.awdpo_config import AWDPOConfig
    from cotforge.train.policy import LoadedPolicy
    from tests.train.test_loss import dataset_of, dpo_args

    monkeypatch.setenv("COTFORGE_REF_CACHE_DIR", str(tmp_path / "cache"))
    tokenizer, policy, reference = models
    pairs = short_pairs([(0.5, 0.5)] * 4)
    plain = aw_trainer(models, pairs, tmp_path / "plain", aggregation="vanilla")
    loaded = LoadedPolicy(reference, tokenizer, "tiny", "full")
    weighted = add_token_weights(plain.train_dataset, loaded, TISSettings())
    chosen, rejected = list(weighted["chosen_token_weights"]), list(weighted["rejected_token_weights"])
    assert [len(w) for w in chosen] == [len(ids) for ids in weighted["chosen_ids"]]
    assert all(abs(sum(w) / len(w) - 1.0) < 1e-5 for w in chosen + rejected)
    assert any(max(w) - min(w) > 1e-3 for w in chosen)  # the two system prompts disagree somewhere
    # A second call reads the cache: the model does not run again.
    calls = []
    monkeypatch.setattr(reference, "forward", lambda *a, **k: calls.append(1))
    assert add_token_weights(plain.train_dataset, loaded, TISSettings())["chosen_token_weights"][:] == chosen
    assert not calls
    monkeypatch.undo()

    def tis_trainer(dataset: Any) -> Any:
        trainer = AlignmentWeightedDPOTrainer(
            copy.deepcopy(policy), ref_model=copy.deepcopy(reference), train_dataset=dataset,
            args=dpo_args(tmp_path / "tis", len(pairs), AWDPOConfig, aggregation="tis"),
            processing_class=copy.deepcopy(tokenizer),
        )  # fmt: skip
        trainer.model.train()
        return trainer

    with pytest.raises(UnsupportedOptionError, match="chosen_token_weights"):
        tis_trainer(dataset_of(pairs))
    ours = tis_trainer(weighted)
    # Through the trainer: DPO over token-weighted sums, against a float64 full-logits reference.
    batch = next(iter(ours.get_train_dataloader()))
    assert batch["token_weights"].shape == batch["input_ids"].shape
    loss_ours, grads_ours = loss_and_grads(ours, batch)
    loss_ref, policy64 = reference_dpo_loss(
        policy, reference, batch, batch["completion_mask"] * batch["token_weights"].double()
    )
    assert loss_ours == pytest.approx(loss_ref.item(), abs=1e-6)
    assert max_diff(grads_ours, [p.grad for p in policy64.parameters()]) < 1e-6
    loss_vanilla, _ = loss_and_grads(plain, {k: v for k, v in batch.items() if k != "token_weights"})
    assert abs(loss_ours - loss_vanilla) > 1e-5

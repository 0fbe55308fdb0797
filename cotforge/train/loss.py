"""The Alignment-Weighted DPO loss and its neighbours as pure tensor functions (no trainer state, no I/O).

Rows follow TRL's layout: a batch of ``B`` pairs is ``2B`` sequences, the chosen ones first. Per-token
log-probabilities are summed per segment (reasoning, answer) for the policy and the reference; with
``Δ_seg = (policy − ref)_seg(chosen) − (policy − ref)_seg(rejected)``:

- ``loss`` (PAPER.md Eq. 4): ``w_rs · −log σ(β Δ_rs) + w_rp · −log σ(β Δ_rp)``
- ``reward``: ``−log σ(β (w_rs Δ_rs + w_rp Δ_rp))``; with ``w_rs = w_rp = 1`` this is vanilla DPO
- ``vanilla``: ``−log σ(β (Δ_rs + Δ_rp))``, weights ignored (plain DPO through the same code path)
- ``masked``: ``−log σ(β Σ_seg m_seg Δ_seg)`` with ``m_seg = 1`` for the segment of larger weight (both on a
  tie), ``0`` for the other: DPO with the segment the judge found harmless left out
- ``tis``: ``−log σ(β (Δ_rs + Δ_rp))`` over *token-weighted* sums (TIS-DPO's token importance weights,
  :mod:`cotforge.train.token_weights`, applied in :func:`segment_sums`); segment weights ignored

Segment sums are taken over the completion only: prompt and padding positions carry segment id 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import torch
import torch.nn.functional as F

from cotforge.train.config import Aggregation

PROMPT, REASONING, ANSWER = 0, 1, 2
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


def segment_sums(
    per_token_logps: torch.Tensor, segment_ids: torch.Tensor, token_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum per-token log-probs per segment: ``(N, T)`` log-probs and segment ids → ``(N, 2)`` [reasoning, answer].

    ``segment_ids`` (and ``token_weights``, when given: each token's log-prob is multiplied by its weight) must
    be aligned with the log-probs (for a causal LM, the ids of the *predicted* tokens, i.e. the sequence's ids
    shifted by one).
    """
    if per_token_logps.shape != segment_ids.shape:
        raise ValueError(
            f"log-probs {tuple(per_token_logps.shape)} and segment ids {tuple(segment_ids.shape)} differ in shape"
        )
    if token_weights is not None:
        if token_weights.shape != per_token_logps.shape:
            raise ValueError(
                f"token weights {tuple(token_weights.shape)} and log-probs {tuple(per_token_logps.shape)} "
                "differ in shape"
            )
        per_token_logps = per_token_logps * token_weights.to(per_token_logps.dtype)
    zero = per_token_logps.new_zeros(())
    reasoning = torch.where(segment_ids == REASONING, per_token_logps, zero).sum(dim=1)
    answer = torch.where(segment_ids == ANSWER, per_token_logps, zero).sum(dim=1)
    return torch.stack([reasoning, answer], dim=1)


def dominant_segments(w_rs: torch.Tensor, w_rp: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` 0/1 mask [reasoning, answer]: 1 for the segment of larger weight, 1 for both on a tie."""
    return torch.stack([w_rs >= w_rp, w_rp >= w_rs], dim=1)


@dataclass(frozen=True)
class AWDPOLossOutput:
    """The batch loss and the per-pair terms it came from (rewards are β × segment log-ratios)."""

    loss: torch.Tensor  # scalar: mean of per_pair
    per_pair: torch.Tensor  # (B,)
    chosen_rewards: torch.Tensor  # (B, 2): β · log-ratio sums [reasoning, answer] of the chosen completion
    rejected_rewards: torch.Tensor  # (B, 2)
    segment_losses: torch.Tensor  # (B, 2): −log σ(β Δ_seg), unweighted


def aw_dpo_loss(
    policy_sums: torch.Tensor,
    ref_sums: torch.Tensor,
    w_rs: torch.Tensor,
    w_rp: torch.Tensor,
    beta: float,
    aggregation: Aggregation,
) -> AWDPOLossOutput:
    """AW-DPO loss from per-segment log-prob sums of ``2B`` sequences (chosen rows first) and ``B`` weights."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if policy_sums.shape != ref_sums.shape or policy_sums.dim() != 2 or policy_sums.size(1) != 2:
        raise ValueError(
            f"policy and reference sums must both be (2B, 2); got {tuple(policy_sums.shape)} and "
            f"{tuple(ref_sums.shape)}"
        )
    if policy_sums.size(0) % 2:
        raise ValueError(f"expected chosen and rejected rows (an even count), got {policy_sums.size(0)}")
    n_pairs = policy_sums.size(0) // 2
    if w_rs.shape != (n_pairs,) or w_rp.shape != (n_pairs,):
        raise ValueError(
            f"weights must have shape ({n_pairs},), got {tuple(w_rs.shape)}, {tuple(w_rp.shape)}"
        )

    logratios = policy_sums - ref_sums.to(policy_sums.dtype)
    chosen, rejected = logratios.chunk(2, dim=0)
    delta = chosen - rejected  # (B, 2)
    weights = torch.stack([w_rs, w_rp], dim=1).to(delta.dtype)
    segment_losses = -F.logsigmoid(beta * delta)
    if aggregation == "loss":
        per_pair = (weights * segment_losses).sum(dim=1)
    elif aggregation == "reward":
        per_pair = -F.logsigmoid(beta * (weights * delta).sum(dim=1))
    elif aggregation == "masked":
        per_pair = -F.logsigmoid(beta * (dominant_segments(w_rs, w_rp).to(delta.dtype) * delta).sum(dim=1))
    else:  # vanilla, and tis (its token weights are already inside the sums)
        per_pair = -F.logsigmoid(beta * delta.sum(dim=1))
    return AWDPOLossOutput(
        loss=per_pair.mean(),
        per_pair=per_pair,
        chosen_rewards=beta * chosen.detach(),
        rejected_rewards=beta * rejected.detach(),
        segment_losses=segment_losses.detach(),
    )


def pair_metrics(out: AWDPOLossOutput, w_rs: torch.Tensor, w_rp: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pair values of the logged metrics (the trainer gathers and averages them).

    ``rewards/*`` are over the whole completion (as TRL logs them); ``*_reasoning``/``*_answer`` per segment.
    """
    chosen, rejected = out.chosen_rewards, out.rejected_rewards
    metrics: dict[str, torch.Tensor] = {
        "rewards/chosen": chosen.sum(dim=1),
        "rewards/rejected": rejected.sum(dim=1),
        "rewards/margins": (chosen - rejected).sum(dim=1),
        "rewards/accuracies": (chosen.sum(dim=1) > rejected.sum(dim=1)).float(),
        "weights/w_rs": w_rs.detach().float(),
        "weights/w_rp": w_rp.detach().float(),
    }
    for index, name in ((0, "reasoning"), (1, "answer")):
        metrics[f"rewards/chosen_{name}"] = chosen[:, index]
        metrics[f"rewards/rejected_{name}"] = rejected[:, index]
        metrics[f"rewards/margins_{name}"] = chosen[:, index] - rejected[:, index]
        metrics[f"rewards/accuracies_{name}"] = (chosen[:, index] > rejected[:, index]).float()
        metrics[f"loss/{name}"] = out.segment_losses[:, index]
    return metrics

"""``AWDPOConfig``: TRL's ``DPOConfig`` plus the Alignment-Weighted DPO options.

Like TRL's own variants, the trainer's options live on its arguments dataclass, so they are saved with the
training arguments (``training_args.bin`` next to the model and in every checkpoint) and a run can be
re-created from them. ``max_length`` (DPOConfig's) and ``truncation`` (cotforge's; its collator truncates,
so TRL's ``truncation_mode`` stays ``keep_start``, whose ``keep_end`` TRL deprecates) decide which tokens of
each segment survive, and pairs left without a reasoning or an answer token are dropped with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from trl import DPOConfig

from cotforge.errors import CotforgeError
from cotforge.train.config import Aggregation


class UnsupportedOptionError(CotforgeError):
    """An option of TRL's DPO that the AW-DPO loss does not implement; the message says what to set."""


@dataclass
class AWDPOConfig(DPOConfig):
    r"""Configuration of ``AlignmentWeightedDPOTrainer``: every ``DPOConfig`` field, plus:

    Parameters:
        aggregation (`str`, defaults to `"loss"`):
            How the segment weights enter the loss. `"loss"`: w_rs·L(reasoning) + w_rp·L(answer) (paper Eq. 4);
            `"reward"`: one sigmoid over β(w_rs·Σ_rs + w_rp·Σ_rp); `"vanilla"`: plain DPO through the same code
            path (weights ignored); `"masked"`: DPO on the segment of larger weight only; `"tis"`: DPO over
            token-weighted sums (the rows must carry ``chosen_token_weights``/``rejected_token_weights``).
        alpha (`float` or `None`, defaults to `None`):
            `None`: train on each pair's stored weights. A number: the weights were recomputed from the pairs'
            judge scores with this α smoothing when the rows were built (``cotforge.train.data.pair_rows``).
        truncation (`str`, defaults to `"keep_start"`):
            Which end of an over-long sequence to keep, `"keep_start"` or `"keep_end"` (cotforge's collator
            truncates; leave TRL's `truncation_mode` at `"keep_start"`).
    """

    aggregation: Aggregation = field(
        default="loss",
        metadata={
            "help": "Segment aggregation: loss (paper Eq. 4), reward, vanilla (plain DPO), masked or tis."
        },
    )
    alpha: float | None = field(
        default=None,
        metadata={
            "help": "α the segment weights were recomputed with from judge scores (None: stored weights)."
        },
    )

    truncation: Literal["keep_start", "keep_end"] = field(
        default="keep_start",
        metadata={"help": "Which end of an over-long sequence to keep (cotforge's collator truncates)."},
    )

    def __post_init__(self) -> None:
        if self.aggregation not in get_args(Aggregation):
            raise UnsupportedOptionError(
                f"`aggregation` must be one of {get_args(Aggregation)}, got {self.aggregation!r}"
            )
        if self.truncation not in ("keep_start", "keep_end"):
            raise UnsupportedOptionError(
                f"`truncation` must be keep_start or keep_end, got {self.truncation!r}"
            )
        if self.truncation_mode != "keep_start":
            # TRL deprecates its keep_end (removed in TRL 2.0); cotforge truncates in its own collator.
            raise UnsupportedOptionError(
                f"truncation_mode={self.truncation_mode!r}: leave TRL's truncation_mode at 'keep_start' and set "
                f"`truncation={self.truncation_mode!r}` (cotforge's collator does the truncation)"
            )
        if self.alpha is not None and self.alpha < 0:
            raise UnsupportedOptionError(f"`alpha` must be ≥ 0 or None, got {self.alpha}")
        super().__post_init__()

"""``AWDPOConfig``: TRL's ``DPOConfig`` plus the Alignment-Weighted DPO options.

Like TRL's own variants, the trainer's options live on its arguments dataclass, so they are saved with the
training arguments (``training_args.bin`` next to the model and in every checkpoint) and a run can be
re-created from them. The segment options of the loss are DPOConfig's own: ``max_length`` and
``truncation_mode`` decide which tokens of each segment survive, and pairs left without a reasoning or an
answer token are dropped with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import DPOConfig

from cotforge.errors import CotforgeError
from cotforge.train.config import Aggregation
from cotforge.train.loss import AGGREGATIONS


class UnsupportedOptionError(CotforgeError):
    """An option of TRL's DPO that the AW-DPO loss does not implement; the message says what to set."""


@dataclass
class AWDPOConfig(DPOConfig):
    r"""Configuration of ``AlignmentWeightedDPOTrainer``: every ``DPOConfig`` field, plus:

    Parameters:
        aggregation (`str`, defaults to `"loss"`):
            How the segment weights enter the loss. `"loss"`: w_rs·L(reasoning) + w_rp·L(answer) (paper Eq. 4);
            `"reward"`: one sigmoid over β(w_rs·Σ_rs + w_rp·Σ_rp); `"vanilla"`: plain DPO through the same code
            path (weights ignored).
        alpha (`float` or `None`, defaults to `None`):
            `None`: train on each pair's stored weights. A number: the weights were recomputed from the pairs'
            judge scores with this α smoothing when the rows were built (``cotforge.train.data.pair_rows``).
    """

    aggregation: Aggregation = field(
        default="loss",
        metadata={"help": "Segment aggregation: loss (paper Eq. 4), reward, or vanilla (plain DPO)."},
    )
    alpha: float | None = field(
        default=None,
        metadata={
            "help": "α the segment weights were recomputed with from judge scores (None: stored weights)."
        },
    )

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise UnsupportedOptionError(
                f"`aggregation` must be one of {AGGREGATIONS}, got {self.aggregation!r}"
            )
        if self.alpha is not None and self.alpha < 0:
            raise UnsupportedOptionError(f"`alpha` must be ≥ 0 or None, got {self.alpha}")
        super().__post_init__()

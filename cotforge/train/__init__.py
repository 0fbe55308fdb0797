"""The bundled trainers: CoT SFT and Alignment-Weighted DPO on TRL.

- :mod:`cotforge.train.config`: Pydantic configs (``SFTTrainConfig``, ``AWDPOTrainConfig``).
- :mod:`cotforge.train.loss`: the pure AW-DPO loss (segment sums → loss and metrics).
- :mod:`cotforge.train.segments`: char spans → per-token segment ids, straddles, truncation checks.
- :mod:`cotforge.train.awdpo`: the collator and ``AlignmentWeightedDPOTrainer`` (a thin ``DPOTrainer`` subclass);
  :mod:`cotforge.train.awdpo_config`: its arguments, ``AWDPOConfig(DPOConfig)`` with ``aggregation`` and ``alpha``.
- :mod:`cotforge.train.sft`: SFT rows from accepted samples, and the TRL ``SFTTrainer`` set-up.
- :mod:`cotforge.train.policy`: the starting model (adapter merge, ``<think>`` tokens, precision).
- :mod:`cotforge.train.data`: records → training rows (pure); :mod:`cotforge.train.edge`: shared edge pieces.
- :mod:`cotforge.train.sft` / :mod:`cotforge.train.awdpo_run`: the stage edges, re-exported here as
  ``train_sft(run_dir, config)`` and ``train_awdpo(run_dir, config)``.

Importing this package is cheap; torch and TRL load only when a trainer is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotforge.train.config import AWDPOTrainConfig, LoRASettings, SFTTrainConfig

if TYPE_CHECKING:
    from cotforge.train.edge import TrainResult

__all__ = ["AWDPOTrainConfig", "LoRASettings", "SFTTrainConfig", "train_awdpo", "train_sft"]


def train_sft(run_dir: Path | str, config: SFTTrainConfig, callbacks: list[Any] | None = None) -> TrainResult:
    """CoT SFT on a run folder (see :func:`cotforge.train.sft.train_sft`)."""
    from cotforge.train.sft import train_sft as run

    return run(run_dir, config, callbacks)


def train_awdpo(
    run_dir: Path | str, config: AWDPOTrainConfig, callbacks: list[Any] | None = None
) -> TrainResult:
    """Alignment-Weighted DPO on a run folder (see :func:`cotforge.train.awdpo_run.train_awdpo`)."""
    from cotforge.train.awdpo_run import train_awdpo as run

    return run(run_dir, config, callbacks)

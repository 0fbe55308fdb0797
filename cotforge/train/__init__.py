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
  ``train_sft(run_dir, config)`` and ``train_awdpo(run_dir, config)``, which check the run folder and the
  inputs against the stages' declarations (``TRAIN_SFT``, ``TRAIN_AWDPO``) first.

Importing this package is cheap; torch and TRL load only when a trainer is built (so the declarations live
here, where the pipeline registry can read them without loading a trainer).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotforge.runfolder import RunFiles
from cotforge.runfolder.declaration import StageDeclaration, check_input
from cotforge.train.config import AWDPOTrainConfig, LoRASettings, SFTTrainConfig

if TYPE_CHECKING:
    from cotforge.train.edge import TrainResult

__all__ = [
    "TRAIN_AWDPO",
    "TRAIN_SFT",
    "AWDPOTrainConfig",
    "LoRASettings",
    "SFTTrainConfig",
    "train_awdpo",
    "train_sft",
]


def _given(path: Path | None, default: str) -> str:
    # A file given explicitly may lie outside the run folder (an absolute path is kept as it is).
    return default if path is None else str(path)


def _sft_inputs(config: SFTTrainConfig) -> list[str]:
    # Without an explicit file, the reviewed samples are read when present, else the accepted ones.
    return ([] if config.data is None else [str(config.data)]) + [_given(config.prompts, RunFiles.PROMPTS)]


TRAIN_SFT = StageDeclaration(
    name="train-sft",
    config="cotforge.train.config:SFTTrainConfig",
    edge="cotforge.train:train_sft",
    conditional_inputs=_sft_inputs,
    optional_inputs=(RunFiles.REVIEWED, RunFiles.ACCEPTED),
    outputs=(RunFiles.TRAIN_SFT_REJECTS,),
    conditional_outputs=lambda config: [_given(config.output_dir, f"{RunFiles.MODELS}/sft")],
)

TRAIN_AWDPO = StageDeclaration(
    name="train-awdpo",
    config="cotforge.train.config:AWDPOTrainConfig",
    edge="cotforge.train:train_awdpo",
    conditional_inputs=lambda config: [_given(config.data, RunFiles.PAIRS)],
    optional_inputs=(f"{RunFiles.MODELS}/sft",),
    outputs=(RunFiles.TRAIN_AWDPO_REJECTS,),
    conditional_outputs=lambda config: [_given(config.output_dir, f"{RunFiles.MODELS}/awdpo")],
)


def train_sft(run_dir: Path | str, config: SFTTrainConfig, callbacks: list[Any] | None = None) -> TrainResult:
    """CoT SFT on a run folder (see :func:`cotforge.train.sft.train_sft`)."""
    from cotforge.train.sft import train_sft as run

    folder = TRAIN_SFT.open_run(run_dir, config)
    if config.data is None and not folder.exists(RunFiles.REVIEWED):
        check_input(folder, TRAIN_SFT.name, RunFiles.ACCEPTED)
    return run(folder, TRAIN_SFT, config, callbacks)


def train_awdpo(
    run_dir: Path | str, config: AWDPOTrainConfig, callbacks: list[Any] | None = None
) -> TrainResult:
    """Alignment-Weighted DPO on a run folder (see :func:`cotforge.train.awdpo_run.train_awdpo`)."""
    from cotforge.train.awdpo_run import train_awdpo as run

    return run(TRAIN_AWDPO.open_run(run_dir, config), TRAIN_AWDPO, config, callbacks)

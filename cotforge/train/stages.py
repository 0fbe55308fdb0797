"""The training stages' declarations (their edges import torch, so they live here, where nothing heavy is)."""

from __future__ import annotations

from typing import Any

from cotforge.pipeline.declaration import StageDeclaration
from cotforge.runfolder import RunFiles


def _sft_inputs(config: Any) -> list[str]:
    # Files given explicitly may lie outside the run folder; the edge reads and checks those itself.
    return ([RunFiles.ACCEPTED] if config.data is None else []) + (
        [RunFiles.PROMPTS] if config.prompts is None else []
    )


TRAIN_SFT = StageDeclaration(
    name="train_sft",
    config="cotforge.train.config:SFTTrainConfig",
    edge="cotforge.train:train_sft",
    conditional_inputs=_sft_inputs,
    optional_inputs=(RunFiles.REVIEWED, RunFiles.AUGMENTED),
    outputs=(f"{RunFiles.MODELS}/sft",),
)

TRAIN_AWDPO = StageDeclaration(
    name="train_awdpo",
    config="cotforge.train.config:AWDPOTrainConfig",
    edge="cotforge.train:train_awdpo",
    conditional_inputs=lambda config: [RunFiles.PAIRS] if config.data is None else [],
    optional_inputs=(f"{RunFiles.MODELS}/sft",),
    outputs=(f"{RunFiles.MODELS}/awdpo",),
)

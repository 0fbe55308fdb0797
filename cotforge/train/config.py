"""Configs of the bundled trainers: Pydantic models a YAML pipeline can embed (unknown keys are errors).

Relative paths (``data``, ``prompts``, ``output_dir``) are read relative to the run folder; the CLI passes
absolute paths. The defaults follow PAPER.md where it says something (β = 0.1 is TRL's, lr = 1e-6 the paper's
best for AW-DPO) and are CPU-friendly elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Aggregation = Literal["loss", "reward", "vanilla"]
ThinkTokens = Literal["add", "keep"]
Precision = Literal["auto", "fp32", "bf16"]


class LoRASettings(BaseModel):
    """A LoRA adapter instead of a full fine-tune (peft)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = Field(
        default="all-linear",
        description="Module names to adapt; 'all-linear' = every linear layer but lm_head.",
    )


class TrainCommon(BaseModel):
    """Settings shared by SFT and AW-DPO."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="Starting model: a local folder (full model or LoRA adapter), a Hub id, or 'smollm2'."
    )
    data: Path | None = Field(default=None, description="Training file; default: the run folder's file.")
    output_dir: Path | None = Field(default=None, description="Default: <run>/models/<sft|awdpo>.")
    lora: LoRASettings | None = Field(
        default=None, description="Train a LoRA adapter (None: full fine-tune)."
    )
    merge_adapter: bool = Field(
        default=False, description="With LoRA: save the adapter merged into its base as a full model."
    )
    learning_rate: float = Field(default=2e-5, gt=0.0)
    epochs: float = Field(default=1.0, gt=0.0)
    max_steps: int | None = Field(default=None, ge=1, description="Overrides epochs when set.")
    batch_size: int = Field(default=4, ge=1, description="Examples (pairs for AW-DPO) per device per step.")
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=1024, ge=8, description="Tokens per sequence (prompt + completion).")
    warmup_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
    lr_scheduler: Literal["linear", "constant", "cosine"] = "linear"
    seed: int = 0
    think_tokens: ThinkTokens = Field(
        default="add",
        description="'add': give the tokenizer <think>/</think> as single added tokens when it lacks them "
        "(embeddings resized); 'keep': use the tokenizer as it is.",
    )
    precision: Precision = Field(default="auto", description="'auto': fp32 on CPU, bf16 on a CUDA GPU.")
    gradient_checkpointing: bool | None = Field(default=None, description="None: on for GPU, off for CPU.")
    logging_steps: int = Field(default=1, ge=1)
    save_steps: int | None = Field(default=None, ge=1, description="Checkpoint every N steps (for resume).")
    resume: bool = Field(default=False, description="Resume from the last checkpoint in output_dir.")
    progress: bool = Field(default=True, description="Show a progress bar.")


class SFTTrainConfig(TrainCommon):
    """CoT SFT: accepted (or reviewed) samples as chat, loss on the assistant turn only."""

    prompts: Path | None = Field(
        default=None, description="PromptRecord file for the samples; default: the run's prompts.jsonl."
    )


class AWDPOTrainConfig(TrainCommon):
    """Alignment-Weighted DPO on preference pairs with segment spans and weights."""

    learning_rate: float = Field(default=1e-6, gt=0.0)
    beta: float = Field(default=0.1, gt=0.0)
    aggregation: Aggregation = Field(
        default="loss",
        description="'loss': w_rs·L(reasoning) + w_rp·L(answer) (paper Eq. 4); 'reward': one sigmoid over "
        "β(w_rs·Σ_rs + w_rp·Σ_rp); 'vanilla': plain DPO through the same code path (weights ignored).",
    )
    alpha: float | None = Field(
        default=None,
        ge=0.0,
        description="None: use each pair's stored weights. A number: recompute the weights from the pair's "
        "judge scores with this α smoothing (pairs without scores keep their stored weights).",
    )
    truncation_mode: Literal["keep_start", "keep_end"] = "keep_start"
    min_answer_fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Drop a pair whose truncation keeps less than this share of an answer's tokens (0: keep "
        "any pair with at least one answer token).",
    )
    precompute_ref_log_probs: bool = Field(
        default=False, description="Compute per-segment reference sums once before training (no ref model)."
    )

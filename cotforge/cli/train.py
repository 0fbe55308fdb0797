"""CLI: `train sft` and `train awdpo` — CoT SFT and Alignment-Weighted DPO on TRL (issue 4).

Heavy imports (torch, TRL) happen inside the commands so `cotforge --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cotforge.cli.common import console, counts_table, err_console, fail, friendly_errors

train_app = typer.Typer(
    name="train",
    help="Train: CoT SFT or Alignment-Weighted DPO on TRL (CPU: fp32; GPU: bf16 + checkpointing).",
    no_args_is_help=True,
)

Opt = typer.Option
# `--run-dir` as well as `--run`: torchrun's argument parser takes `--run` for an abbreviation of its own
# `--run-path` and stops, so multi-process launches spell it `--run-dir`.
RunOption = Annotated[
    Path,
    Opt("--run", "-r", "--run-dir", help="Run folder: inputs are read from it, outputs written into it."),
]


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else path.expanduser().resolve()


def _common(
    model: str,
    data: Path | None,
    output: Path | None,
    lora: bool,
    lora_r: int,
    lora_alpha: int,
    lora_dropout: float,
    merge_adapter: bool,
    lr: float,
    epochs: float,
    max_steps: int | None,
    batch_size: int,
    grad_accum: int,
    max_length: int,
    seed: int,
    think_tokens: str,
    precision: str,
    gradient_checkpointing: bool | None,
    save_steps: int | None,
    resume: bool,
    no_progress: bool,
) -> dict[str, Any]:
    from cotforge.train.config import LoRASettings

    if think_tokens not in ("add", "keep"):
        fail(f"--think-tokens must be 'add' or 'keep', not {think_tokens!r}")
    if precision not in ("auto", "fp32", "bf16"):
        fail(f"--precision must be auto, fp32 or bf16, not {precision!r}")
    return {
        "model": model,
        "data": _absolute(data),
        "output_dir": _absolute(output),
        "lora": LoRASettings(r=lora_r, alpha=lora_alpha, dropout=lora_dropout) if lora else None,
        "merge_adapter": merge_adapter,
        "learning_rate": lr,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "max_length": max_length,
        "seed": seed,
        "think_tokens": think_tokens,
        "precision": precision,
        "gradient_checkpointing": gradient_checkpointing,
        "save_steps": save_steps,
        "resume": resume,
        "progress": not no_progress,
    }


def _summary(title: str, result: Any) -> None:
    import os

    if os.environ.get("RANK", "0") != "0":
        return  # one summary per multi-process run
    metrics = result.final_metrics
    rows: dict[str, Any] = {
        "output": result.output_dir,
        "saved": result.saved,
        "steps": result.steps,
        "examples": result.examples,
        "dropped (truncation)": result.dropped,
        "rejects": result.rejects,
    }
    for key in (
        "loss",
        "rewards/margins",
        "rewards/margins_reasoning",
        "rewards/margins_answer",
        "train_loss",
    ):
        if isinstance(metrics.get(key), int | float):
            rows[key] = f"{metrics[key]:.4f}"
    rows["manifest"] = result.manifest
    console.print(counts_table(title, rows))
    if result.rejects:
        err_console.print(
            f"[yellow]{result.rejects} record(s) not trained on; reasons in the rejects file[/]"
        )


@train_app.command("sft")
@friendly_errors
def sft(
    run: RunOption = Path("runs/default"),
    model: str = Opt("smollm2", "--model", "-m", help="Starting model: folder, Hub id or 'smollm2'."),
    data: Path | None = Opt(
        None, "--data", help="Sample JSONL (default: reviewed.jsonl, else accepted.jsonl)."
    ),
    prompts: Path | None = Opt(
        None, "--prompts", help="PromptRecord JSONL (default: the run's prompts.jsonl)."
    ),
    output: Path | None = Opt(None, "--output", "-o", help="Output folder (default: <run>/models/sft)."),
    lora: bool = Opt(False, "--lora", help="Train a LoRA adapter instead of the full model."),
    lora_r: int = Opt(16, "--lora-r"),
    lora_alpha: int = Opt(32, "--lora-alpha"),
    lora_dropout: float = Opt(0.05, "--lora-dropout"),
    merge_adapter: bool = Opt(False, "--merge-adapter", help="With --lora: save the merged full model."),
    lr: float = Opt(2e-5, "--lr", help="Learning rate."),
    epochs: float = Opt(1.0, "--epochs"),
    max_steps: int | None = Opt(None, "--max-steps", help="Optimizer steps (overrides --epochs)."),
    batch_size: int = Opt(4, "--batch-size", help="Samples per device per step."),
    grad_accum: int = Opt(1, "--grad-accum"),
    max_length: int = Opt(1024, "--max-length", help="Tokens per sequence; longer samples are dropped."),
    seed: int = Opt(0, "--seed"),
    think_tokens: str = Opt("add", "--think-tokens", help="add: make <think>/</think> single tokens; keep."),
    precision: str = Opt("auto", "--precision", help="auto (fp32 on CPU, bf16 on GPU), fp32 or bf16."),
    gradient_checkpointing: bool | None = Opt(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Default: on for GPU only."
    ),
    save_steps: int | None = Opt(None, "--save-steps", help="Checkpoint every N steps (for --resume)."),
    resume: bool = Opt(False, "--resume", help="Resume from the last checkpoint in the output folder."),
    no_progress: bool = Opt(False, "--no-progress", help="No progress bar."),
) -> None:
    """CoT SFT: accepted (or reviewed) samples as chat, loss on the <think>…</think> + answer turn."""
    from cotforge.train import SFTTrainConfig, train_sft

    common = _common(
        model, data, output, lora, lora_r, lora_alpha, lora_dropout, merge_adapter, lr, epochs, max_steps,
        batch_size, grad_accum, max_length, seed, think_tokens, precision, gradient_checkpointing, save_steps,
        resume, no_progress,
    )  # fmt: skip
    config = SFTTrainConfig(**common, prompts=_absolute(prompts))
    _summary("train sft", train_sft(run, config))


@train_app.command("awdpo")
@friendly_errors
def awdpo(
    run: RunOption = Path("runs/default"),
    model: str | None = Opt(None, "--model", "-m", help="Starting policy (default: <run>/models/sft)."),
    data: Path | None = Opt(None, "--data", help="PreferencePair JSONL (default: the run's pairs.jsonl)."),
    output: Path | None = Opt(None, "--output", "-o", help="Output folder (default: <run>/models/awdpo)."),
    aggregation: str = Opt(
        "loss", "--aggregation", help="loss (paper Eq. 4), reward, or vanilla (plain DPO)."
    ),
    beta: float = Opt(0.1, "--beta", help="DPO β."),
    alpha: float | None = Opt(None, "--alpha", help="Re-weight from judge scores with this α smoothing."),
    truncation: str = Opt("keep_start", "--truncation", help="keep_start or keep_end."),
    precompute_ref: bool = Opt(
        False, "--precompute-ref", help="Per-segment reference sums once, no ref model."
    ),
    lora: bool = Opt(False, "--lora", help="Train a LoRA adapter instead of the full model."),
    lora_r: int = Opt(16, "--lora-r"),
    lora_alpha: int = Opt(32, "--lora-alpha"),
    lora_dropout: float = Opt(0.05, "--lora-dropout"),
    merge_adapter: bool = Opt(False, "--merge-adapter", help="With --lora: save the merged full model."),
    lr: float = Opt(1e-6, "--lr", help="Learning rate (the paper's best: 1e-6)."),
    epochs: float = Opt(1.0, "--epochs"),
    max_steps: int | None = Opt(None, "--max-steps", help="Optimizer steps (overrides --epochs)."),
    batch_size: int = Opt(4, "--batch-size", help="Pairs per device per step."),
    grad_accum: int = Opt(1, "--grad-accum"),
    max_length: int = Opt(
        1024, "--max-length", help="Tokens per sequence; pairs losing a segment are dropped."
    ),
    seed: int = Opt(0, "--seed"),
    think_tokens: str = Opt("add", "--think-tokens", help="add: make <think>/</think> single tokens; keep."),
    precision: str = Opt("auto", "--precision", help="auto (fp32 on CPU, bf16 on GPU), fp32 or bf16."),
    gradient_checkpointing: bool | None = Opt(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Default: on for GPU only."
    ),
    save_steps: int | None = Opt(None, "--save-steps", help="Checkpoint every N steps (for --resume)."),
    resume: bool = Opt(False, "--resume", help="Resume from the last checkpoint in the output folder."),
    no_progress: bool = Opt(False, "--no-progress", help="No progress bar."),
) -> None:
    """Alignment-Weighted DPO on preference pairs, weighting the reasoning and answer segments."""
    from cotforge.runfolder import RunFiles
    from cotforge.train import AWDPOTrainConfig, train_awdpo

    if model is None:
        sft_dir = run / RunFiles.MODELS / "sft"
        if not sft_dir.is_dir():
            fail(f"no SFT model at {sft_dir}; run `cotforge train sft --run {run}` first or pass --model")
        model = str(sft_dir.resolve())
    if aggregation not in ("loss", "reward", "vanilla"):
        fail(f"--aggregation must be loss, reward or vanilla, not {aggregation!r}")
    if truncation not in ("keep_start", "keep_end"):
        fail(f"--truncation must be keep_start or keep_end, not {truncation!r}")
    common = _common(
        model, data, output, lora, lora_r, lora_alpha, lora_dropout, merge_adapter, lr, epochs, max_steps,
        batch_size, grad_accum, max_length, seed, think_tokens, precision, gradient_checkpointing, save_steps,
        resume, no_progress,
    )  # fmt: skip
    config = AWDPOTrainConfig(
        **common,
        aggregation=aggregation,  # type: ignore[arg-type]
        beta=beta,
        alpha=alpha,
        truncation_mode=truncation,  # type: ignore[arg-type]
        precompute_ref_log_probs=precompute_ref,
    )
    _summary(f"train awdpo ({aggregation})", train_awdpo(run, config))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

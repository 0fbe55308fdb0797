"""CLI: `train sft` and `train awdpo`: CoT SFT and Alignment-Weighted DPO on TRL.

Every setting is a key of ``SFTTrainConfig`` / ``AWDPOTrainConfig`` (``--config``, ``--set``); the flags are a
few shortcuts. Heavy imports (torch, TRL) happen inside the commands so `cotforge --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cotforge.cli.common import console, counts_table, err_console, fail, plain
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command

if TYPE_CHECKING:
    from cotforge.train.config import AWDPOTrainConfig, SFTTrainConfig

train_app = typer.Typer(
    name="train",
    help="Train: CoT SFT or Alignment-Weighted DPO on TRL (CPU: fp32; GPU: bf16 + checkpointing).",
    no_args_is_help=True,
)

# `--run-dir` as well as `--run`: torchrun's argument parser takes `--run` for an abbreviation of its own
# `--run-path` and stops, so multi-process launches spell it `--run-dir`.
RunOption = Annotated[
    Path,
    typer.Option(
        "--run", "-r", "--run-dir", help="Run folder: inputs are read from it, outputs written into it."
    ),
]

COMMON_FLAGS = {
    "model": "model",
    "data": "data",
    "output": "output_dir",
    "max_steps": "max_steps",
    "lora": "lora",
    "resume": "resume",
    "progress": "progress",
}
SPELLINGS = {"output": ("--output", "-o"), "lora": ("--lora",)}
SFT = StageConfig(
    "cotforge.train.config:SFTTrainConfig",
    {**COMMON_FLAGS, "prompts": "prompts"},
    "train sft",
    spellings=SPELLINGS,
)
AWDPO = StageConfig(
    "cotforge.train.config:AWDPOTrainConfig",
    {**COMMON_FLAGS, "aggregation": "aggregation"},
    "train awdpo",
    spellings=SPELLINGS,
)


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
            plain(f"{result.rejects} record(s) not trained on; reasons in the rejects file", style="yellow")
        )


@stage_command(train_app, SFT, name="sft")
def sft(config: SFTTrainConfig, run: RunOption = Path("runs/default")) -> None:
    """CoT SFT: accepted (or reviewed) samples as chat, loss on the <think>…</think> + answer turn."""
    from cotforge.train import train_sft

    _summary("train sft", train_sft(run, config))


def _sft_model(raw: dict[str, Any], params: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """The starting policy: the run's SFT model unless the config, --set or --model names one."""
    from cotforge.runfolder import RunFiles

    if flags.get("model") is None and "model" not in raw:
        run = params["run"]
        sft_dir = run / RunFiles.MODELS / "sft"
        if not sft_dir.is_dir():
            fail(f"no SFT model at {sft_dir}; run `cotforge train sft --run {run}` first or pass --model")
        raw = {**raw, "model": str(sft_dir.resolve())}
    return raw


@stage_command(train_app, AWDPO, name="awdpo", prepare=_sft_model)
def awdpo(config: AWDPOTrainConfig, run: RunOption = Path("runs/default")) -> None:
    """Alignment-Weighted DPO on preference pairs, weighting the reasoning and answer segments.

    The starting policy defaults to the run's SFT model (<run>/models/sft).
    """
    from cotforge.train import train_awdpo

    _summary(f"train awdpo ({config.aggregation})", train_awdpo(run, config))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

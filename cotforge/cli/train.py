"""CLI: `train sft` and `train awdpo`: CoT SFT and Alignment-Weighted DPO on TRL.

Every setting is a key of ``SFTTrainConfig`` / ``AWDPOTrainConfig`` (``--config``, ``--set``); the flags are a
few shortcuts. Heavy imports (torch, TRL) happen inside the commands so `cotforge --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cotforge.cli import llm_options as opt
from cotforge.cli.common import console, counts_table, err_console, fail, friendly_errors
from cotforge.cli.config_options import ConfigFile, Sets, StageConfig

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
Data = Annotated[Path | None, Opt("--data")]
Output = Annotated[Path | None, Opt("--output", "-o")]
MaxSteps = Annotated[int | None, Opt("--max-steps")]
Lora = Annotated[bool | None, Opt("--lora")]
Resume = Annotated[bool | None, Opt("--resume/--no-resume")]

COMMON_FLAGS = {
    "model": "model",
    "data": "data",
    "output": "output_dir",
    "max_steps": "max_steps",
    "lora": "lora",
    "resume": "resume",
    "progress": "progress",
}
SFT = StageConfig("cotforge.train.config:SFTTrainConfig", {**COMMON_FLAGS, "prompts": "prompts"}, "train sft")
AWDPO = StageConfig(
    "cotforge.train.config:AWDPOTrainConfig", {**COMMON_FLAGS, "aggregation": "aggregation"}, "train awdpo"
)


def _absolute(path: Path | None) -> str | None:
    # Flag paths are relative to the working directory; config-file paths to the run folder.
    return None if path is None else str(path.expanduser().resolve())


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


@train_app.command("sft", cls=SFT.command())
@friendly_errors
def sft(
    run: RunOption = Path("runs/default"),
    config_file: ConfigFile = None,
    sets: Sets = None,
    model: opt.Model = None,
    data: Data = None,
    prompts: Annotated[Path | None, Opt("--prompts")] = None,
    output: Output = None,
    max_steps: MaxSteps = None,
    lora: Lora = None,
    resume: Resume = None,
    progress: opt.Progress = None,
) -> None:
    """CoT SFT: accepted (or reviewed) samples as chat, loss on the <think>…</think> + answer turn."""
    from cotforge.train import train_sft

    config = SFT.build(
        config_file, sets, model=model, data=_absolute(data), prompts=_absolute(prompts),
        output=_absolute(output), max_steps=max_steps, lora={} if lora else None, resume=resume,
        progress=progress,
    )  # fmt: skip
    _summary("train sft", train_sft(run, config))


@train_app.command("awdpo", cls=AWDPO.command())
@friendly_errors
def awdpo(
    run: RunOption = Path("runs/default"),
    config_file: ConfigFile = None,
    sets: Sets = None,
    model: opt.Model = None,
    data: Data = None,
    output: Output = None,
    aggregation: Annotated[str | None, Opt("--aggregation")] = None,
    max_steps: MaxSteps = None,
    lora: Lora = None,
    resume: Resume = None,
    progress: opt.Progress = None,
) -> None:
    """Alignment-Weighted DPO on preference pairs, weighting the reasoning and answer segments.

    The starting policy defaults to the run's SFT model (<run>/models/sft).
    """
    from cotforge.runfolder import RunFiles
    from cotforge.train import train_awdpo

    raw = AWDPO.raw(config_file, sets)
    if model is None and "model" not in raw:
        sft_dir = run / RunFiles.MODELS / "sft"
        if not sft_dir.is_dir():
            fail(f"no SFT model at {sft_dir}; run `cotforge train sft --run {run}` first or pass --model")
        model = str(sft_dir.resolve())
    config = AWDPO.validate(
        raw, config_file, sets, model=model, data=_absolute(data), output=_absolute(output),
        aggregation=aggregation, max_steps=max_steps, lora={} if lora else None, resume=resume,
        progress=progress,
    )  # fmt: skip
    _summary(f"train awdpo ({config.aggregation})", train_awdpo(run, config))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

"""The shared edge of both trainers: input files, TRL arguments, resume, outputs and the manifest.

Multi-process runs (``torchrun`` / ``accelerate launch``) read the same inputs on every rank; only rank 0
writes rejects, metrics, the model and the manifest.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cotforge.runfolder import RunFolder, RunFolderError
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import RejectRecord, RunManifest
from cotforge.train.callbacks import MetricsFileCallback, ProgressBarCallback, trim_metrics
from cotforge.train.config import LoRASettings, TrainCommon
from cotforge.train.policy import resolve_precision, use_gpu

T = TypeVar("T", bound=BaseModel)

METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"


class TrainResult(BaseModel):
    """What a training run produced (returned by ``train_sft`` / ``train_awdpo``)."""

    stage: str
    output_dir: str
    saved: str  # "full", "adapter" or "merged"
    steps: int
    examples: int
    dropped: int
    rejects: int
    final_metrics: dict[str, Any]
    manifest: str


def rank() -> int:
    """This process's rank under torchrun / accelerate launch (0 when single-process)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def in_run(folder: RunFolder, path: Path | None, default: str | Path) -> Path:
    """``path`` (relative ones are inside the run folder), or the run folder's ``default``."""
    chosen = Path(default) if path is None else Path(path)
    return chosen if chosen.is_absolute() else folder.root / chosen


def read_numbered(path: Path, model: type[T], stage: str) -> tuple[list[tuple[int, T]], list[RejectRecord]]:
    """Valid records with their 1-based line numbers, and a reject for every line that is not one."""
    if not path.exists():
        raise RunFolderError(f"{path}: not found; run the stage that writes it first or pass --data")
    records: list[tuple[int, T]] = []
    rejects: list[RejectRecord] = []
    # errors="replace": a line that is not UTF-8 becomes an invalid record (a reject), not a crash.
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                records.append((lineno, model.model_validate_json(line)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "record"
                rejects.append(
                    RejectRecord(
                        stage=stage,
                        source=str(path),
                        line=lineno,
                        reasons=["invalid_record"],
                        message=f"{path}:{lineno}: not a valid {model.__name__} ({where}: {first['msg']}); "
                        "fix or remove the line",
                        raw=line.rstrip("\n")[:4000],
                    )
                )
    return records, rejects


def lora_config(settings: LoRASettings) -> Any:
    """A peft ``LoraConfig`` for a causal LM (never on ``lm_head``: TRL's fused head reads its weight)."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
    )


def trl_arguments(config: TrainCommon, output_dir: Path) -> dict[str, Any]:
    """Keyword arguments shared by TRL's ``DPOConfig`` and ``SFTConfig`` for this machine.

    CPU: fp32, no gradient checkpointing, gloo for several processes. GPU: bf16 autocast + checkpointing.
    """
    gpu = use_gpu()
    precision = resolve_precision(config.precision)
    checkpointing = gpu if config.gradient_checkpointing is None else config.gradient_checkpointing
    return {
        "output_dir": str(output_dir / CHECKPOINTS_DIR),
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "warmup_steps": config.warmup_ratio,
        "lr_scheduler_type": config.lr_scheduler,
        "seed": config.seed,
        "bf16": precision == "bf16",
        "fp16": False,
        "gradient_checkpointing": checkpointing,
        "logging_steps": config.logging_steps,
        "save_strategy": "steps" if config.save_steps else "no",
        "save_steps": config.save_steps or 500,
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": not gpu,
        "ddp_backend": "gloo" if not gpu and world_size() > 1 else None,
        "max_length": config.max_length,
        "dataloader_num_workers": 0,
    }


def prepare_output(config: TrainCommon, output_dir: Path) -> str | None:
    """The checkpoint to resume from (metrics after it trimmed), or ``None`` for a fresh start (old cleared)."""
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = output_dir / CHECKPOINTS_DIR
    metrics = output_dir / METRICS_FILE
    last = get_last_checkpoint(str(checkpoints)) if config.resume and checkpoints.is_dir() else None
    if rank() != 0:
        return last
    if last is not None:
        trim_metrics(metrics, int(Path(last).name.rsplit("-", 1)[-1]))
        return last
    # A fresh start clears what an earlier run left here, so a folder never holds both a full model and an
    # adapter. Only files the trainers write are removed.
    metrics.unlink(missing_ok=True)
    shutil.rmtree(checkpoints, ignore_errors=True)
    stale = ["adapter_config.json", "config.json", "generation_config.json"]
    for path in [*output_dir.glob("*.safetensors"), *(output_dir / name for name in stale)]:
        path.unlink(missing_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    return None


class _SilentStageRun(StageRun):
    """A StageRun that writes nothing (non-zero ranks)."""

    def write(self, status: str, error: str | None = None) -> RunManifest:
        return self.manifest(status, error)


def stage_run(folder: RunFolder, declaration: StageDeclaration, config: BaseModel) -> StageRun:
    """The stage's manifest writer on rank 0, a silent one on the other ranks."""
    cls = StageRun if rank() == 0 else _SilentStageRun
    return cls.declared(folder, declaration, config)


def run_relative(folder: RunFolder, path: Path | str) -> str:
    """``path`` relative to the run folder when inside it (manifest keys), else absolute."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(folder.root.resolve()))
    except ValueError:
        return str(resolved)


def quiet_trainer(trainer: Any) -> Any:
    """Drop transformers' stdout log printer: metrics go to metrics.jsonl and the progress bar."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def callbacks_for(config: TrainCommon, output_dir: Path, description: str) -> list[Any]:
    """The metrics file callback and, when asked, the progress bar."""
    callbacks: list[Any] = [MetricsFileCallback(output_dir / METRICS_FILE)]
    if config.progress:
        callbacks.append(ProgressBarCallback(description))
    return callbacks


@contextmanager
def closing_callbacks(callbacks: list[Any]) -> Iterator[None]:
    """Stop progress bars and close metric files even when training raises."""
    try:
        yield
    finally:
        for callback in callbacks:
            if isinstance(callback, MetricsFileCallback | ProgressBarCallback):
                callback.close()


def save_outputs(
    trainer: Any, tokenizer: Any, config: TrainCommon, output_dir: Path
) -> tuple[str, list[str]]:
    """Save the model (or adapter, or merged adapter) and tokenizer; returns the kind and weight files."""
    saved = "full"
    if config.lora is not None:
        saved = "merged" if config.merge_adapter else "adapter"
    if rank() == 0:
        # A weight file may be a hard link shared with another run folder (experiment sweeps link models):
        # writing through it would change that run's model too, so the old file is unlinked first.
        for stale in output_dir.glob("*.safetensors"):
            stale.unlink()
        model = trainer.accelerator.unwrap_model(trainer.model)
        if saved == "merged":
            model.merge_and_unload().save_pretrained(output_dir)
        elif saved == "adapter":
            # Rows of added tokens are rebuilt from the base on load (see policy.py): no 100 MB embedding copy.
            model.save_pretrained(output_dir, save_embedding_layers=False)
        else:
            trainer.save_model(str(output_dir))
        tokenizer.save_pretrained(output_dir)
        checkpoints = output_dir / CHECKPOINTS_DIR
        if checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()
    trainer.accelerator.wait_for_everyone()
    weights = sorted(str(p) for p in output_dir.glob("*.safetensors"))
    return saved, weights


def final_metrics(trainer: Any, metrics_cb: MetricsFileCallback) -> dict[str, Any]:
    """The last logged training step's metrics plus the run summary (runtime, mean train loss)."""
    summary: dict[str, Any] = next(
        (h for h in reversed(trainer.state.log_history) if "train_runtime" in h), {}
    )
    return {**metrics_cb.last, **{k: v for k, v in summary.items() if k != "step"}}


def write_rejects(folder: RunFolder, name: str, rejects: list[RejectRecord]) -> None:
    if rank() == 0:
        if rejects:
            folder.write(name, rejects)
        else:
            folder.path(name).unlink(missing_ok=True)


def quiet_libraries() -> None:
    """Silence the datasets/transformers tqdm bars: the stage shows its own progress."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()

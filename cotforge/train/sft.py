"""``train_sft``: CoT SFT with TRL's ``SFTTrainer`` (run folder in → model, metrics, rejects, manifest out).

Data: ``reviewed.jsonl`` when present, else ``accepted.jsonl`` (``Sample`` records), joined with
``prompts.jsonl`` by ``prompt_id``. Each sample becomes a prompt-completion chat row whose assistant turn is
``sample.rationale.render()``; TRL computes the loss on the completion only. A sample whose answer would be
truncated away is dropped with a reason. Full fine-tune or LoRA (with LoRA, rows of newly added
``<think>``/``</think>`` tokens stay at their subword-mean initialisation; see :mod:`cotforge.train.policy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cotforge.errors import CotforgeError
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.schemas import PromptRecord, RejectRecord, Sample, SegmentSpan
from cotforge.train.config import SFTTrainConfig
from cotforge.train.data import RowsResult, sft_rows
from cotforge.train.edge import (
    TrainResult,
    callbacks_for,
    closing_callbacks,
    final_metrics,
    in_run,
    lora_config,
    prepare_output,
    quiet_libraries,
    quiet_trainer,
    read_numbered,
    save_outputs,
    stage_run,
    trl_arguments,
    write_rejects,
)
from cotforge.train.policy import load_policy
from cotforge.train.segments import SegmentError, check_completion_fits

STAGE = "train-sft"


def _fitting_rows(
    rows: RowsResult, tokenizer: Any, max_length: int, source: Path
) -> tuple[list[dict], list[RejectRecord], int]:
    """Rows that keep a reasoning and an answer token after truncation; rejects for the others; straddles."""
    kept: list[dict[str, Any]] = []
    rejects: list[RejectRecord] = []
    straddles = 0
    for row in rows.rows:
        content = row["completion"][-1]["content"]
        try:
            straddles += check_completion_fits(
                tokenizer, row["prompt"], row["completion"], SegmentSpan.of(content).reasoning_end, max_length
            )
        except SegmentError as exc:
            line = rows.lines.get(row["sample_id"])
            rejects.append(
                RejectRecord(
                    stage=STAGE,
                    source=str(source),
                    line=line,
                    record_id=row["sample_id"],
                    reasons=[exc.code],
                    message=f"{source}:{line}: sample {row['sample_id']}: {exc}",
                )
            )
            continue
        kept.append(row)
    return kept, rejects, straddles


def train_sft(
    folder: RunFolder, stage: StageDeclaration, config: SFTTrainConfig, callbacks: list[Any] | None = None
) -> TrainResult:
    """CoT SFT on the run's accepted (or reviewed) samples; returns what was written."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    quiet_libraries()
    # The package-level train_sft opened the run folder and checked the inputs against ``stage``.
    default_data = RunFiles.REVIEWED if folder.exists(RunFiles.REVIEWED) else RunFiles.ACCEPTED
    data_path = in_run(folder, config.data, default_data)
    prompts_path = in_run(folder, config.prompts, RunFiles.PROMPTS)
    output_dir = in_run(folder, config.output_dir, Path(RunFiles.MODELS) / "sft")
    samples, rejects = read_numbered(data_path, Sample, STAGE)
    prompt_records, prompt_rejects = read_numbered(prompts_path, PromptRecord, STAGE)
    rows = sft_rows(samples, {p.id: p for _, p in prompt_records}, str(data_path), STAGE)
    rejects += prompt_rejects + rows.rejects
    with stage_run(folder, stage, config) as run:
        with run.timer("load"):
            policy = load_policy(config.model, config.think_tokens)
        kept, too_long, straddles = _fitting_rows(rows, policy.tokenizer, config.max_length, data_path)
        rejects += too_long
        write_rejects(folder, RunFiles.TRAIN_SFT_REJECTS, rejects)
        if not kept:
            raise CotforgeError(
                f"{data_path}: no usable sample ({len(rejects)} rejected, reasons in "
                f"{folder.path(RunFiles.TRAIN_SFT_REJECTS)})"
            )
        args = SFTConfig(
            **trl_arguments(config, output_dir),
            packing=False,
            padding_free=False,
            assistant_only_loss=False,
            completion_only_loss=True,
        )
        peft = lora_config(config.lora) if config.lora else None
        resume = prepare_output(config, output_dir)
        cbs = callbacks_for(config, output_dir, "CoT SFT")
        with run.timer("setup"):
            trainer = quiet_trainer(
                SFTTrainer(
                    model=policy.model,
                    args=args,
                    train_dataset=Dataset.from_list(kept),
                    processing_class=policy.tokenizer,
                    peft_config=peft,
                    callbacks=[*cbs, *(callbacks or [])],
                )
            )
        with run.timer("train"), closing_callbacks(cbs):
            trainer.train(resume_from_checkpoint=resume)
        with run.timer("save"):
            saved, _ = save_outputs(trainer, policy.tokenizer, config, output_dir)
        metrics = final_metrics(trainer, cbs[0])
        run.counts.update(
            samples_read=len(samples),
            rejected=len(rejects),
            dropped_too_long=len(too_long),
            trained_samples=len(kept),
            steps=trainer.state.global_step,
            straddled_tokens=straddles,
        )
        run.extra.update(
            output_dir=str(output_dir),
            data=str(data_path),
            saved=saved,
            resumed_from=resume,
            policy=policy.describe(),
            world_size=trainer.accelerator.num_processes,
            precision="bf16" if args.bf16 else "fp32",
            gradient_checkpointing=args.gradient_checkpointing,
            final_metrics=metrics,
        )
    return TrainResult(
        stage=STAGE,
        output_dir=str(output_dir),
        saved=saved,
        steps=trainer.state.global_step,
        examples=len(kept),
        dropped=len(too_long),
        rejects=len(rejects),
        final_metrics=metrics,
        manifest=str(folder.manifest_path(STAGE)),
    )

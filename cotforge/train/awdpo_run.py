"""``train_awdpo``: the AW-DPO stage edge (run folder in → model, metrics, rejects and manifest out).

Reads ``pairs.jsonl`` (or ``config.data``), segments the pairs, drops with a reason those that cannot keep a
reasoning and an answer token, trains ``AlignmentWeightedDPOTrainer`` and writes ``<run>/models/awdpo``
(model or adapter + tokenizer + ``metrics.jsonl``), ``train-awdpo.rejects.jsonl`` and
``manifests/train-awdpo.json``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from cotforge.errors import CotforgeError
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.schemas import PreferencePair, RejectRecord
from cotforge.train.config import AWDPOTrainConfig
from cotforge.train.data import pair_rows
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

STAGE = "train-awdpo"
MAX_DROPS_IN_MANIFEST = 200


def _drop_rejects(dropped: list[dict[str, Any]], source: Path, lines: dict[str, int]) -> list[RejectRecord]:
    rejects = []
    for drop in dropped:
        pair_id = drop["pair_id"]
        line = lines.get(pair_id) if pair_id else None
        rejects.append(
            RejectRecord(
                stage=STAGE,
                source=str(source),
                line=line,
                record_id=pair_id,
                reasons=[drop["code"]],
                message=f"{source}:{line}: pair {pair_id}: {drop['message']}",
            )
        )
    return rejects


def _fsdp_enabled() -> bool:
    import os

    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")


def train_awdpo(
    folder: RunFolder, stage: StageDeclaration, config: AWDPOTrainConfig, callbacks: list[Any] | None = None
) -> TrainResult:
    """Train Alignment-Weighted DPO on the run's pairs; returns what was written.

    ``callbacks`` are extra ``transformers.TrainerCallback``s (e.g. a pipeline's own progress hooks).
    """
    from datasets import Dataset

    from cotforge.train.awdpo import AlignmentWeightedDPOTrainer
    from cotforge.train.awdpo_config import AWDPOConfig
    from cotforge.train.segments import segment_dataset

    quiet_libraries()
    # The package-level train_awdpo opened the run folder and checked the inputs against ``stage``.
    data_path = in_run(folder, config.data, RunFiles.PAIRS)
    output_dir = in_run(folder, config.output_dir, Path(RunFiles.MODELS) / "awdpo")
    numbered, rejects = read_numbered(data_path, PreferencePair, STAGE)
    rows = pair_rows(numbered, config.alpha, str(data_path))
    rejects += rows.rejects
    with stage_run(folder, stage, config) as run:
        with run.timer("load"):
            policy = load_policy(config.model, config.think_tokens)
        dataset, report = None, None
        if rows.rows:
            with run.timer("segment"):
                dataset, report = segment_dataset(
                    Dataset.from_list(rows.rows),
                    policy.tokenizer,
                    config.max_length,
                    config.truncation_mode,
                    min_answer_fraction=config.min_answer_fraction,
                )
            rejects += _drop_rejects(report.dropped, data_path, rows.lines)
            if config.aggregation == "tis" and len(dataset):
                from cotforge.train.token_weights import add_token_weights

                with run.timer("token_weights"):
                    dataset = add_token_weights(dataset, policy, config.tis, config.progress)
        write_rejects(folder, RunFiles.TRAIN_AWDPO_REJECTS, rejects)
        if dataset is None or report is None or len(dataset) == 0:
            raise CotforgeError(
                f"{data_path}: no usable preference pair ({len(rejects)} rejected, reasons in "
                f"{folder.path(RunFiles.TRAIN_AWDPO_REJECTS)}); fix the pairs or raise max_length"
            )
        if config.lora is None and not config.precompute_ref_log_probs and _fsdp_enabled():
            # Under FSDP the reference copy is sharded and prepared by TRL, which may reload the base the config
            # names instead of these (SFT) weights: refuse rather than train against the wrong reference.
            raise CotforgeError(
                "a full fine-tune under FSDP needs precompute_ref_log_probs: true (reference sums computed from "
                "the starting weights before training) or a LoRA adapter (lora: {...}); nothing was trained"
            )
        # An explicit reference copy: TRL would otherwise reload the original folder, missing added tokens
        # and a merged adapter. LoRA needs none (adapter off = reference); precompute needs none either.
        ref_model = None
        if config.lora is None and not config.precompute_ref_log_probs:
            ref_model = copy.deepcopy(policy.model).eval().requires_grad_(False)
        args = AWDPOConfig(
            **trl_arguments(config, output_dir),
            beta=config.beta,
            truncation=config.truncation_mode,
            precompute_ref_log_probs=config.precompute_ref_log_probs,
            aggregation=config.aggregation,
            alpha=config.alpha,
        )
        resume = prepare_output(config, output_dir)
        cbs = callbacks_for(config, output_dir, f"AW-DPO ({config.aggregation})")
        with run.timer("setup"):
            trainer = quiet_trainer(
                AlignmentWeightedDPOTrainer(
                    policy.model,
                    ref_model=ref_model,
                    args=args,
                    train_dataset=dataset,
                    processing_class=policy.tokenizer,
                    peft_config=lora_config(config.lora) if config.lora else None,
                    callbacks=[*cbs, *(callbacks or [])],
                )
            )
        with run.timer("train"), closing_callbacks(cbs):
            trainer.train(resume_from_checkpoint=resume)
        with run.timer("save"):
            saved, _ = save_outputs(trainer, policy.tokenizer, config, output_dir)
        metrics = final_metrics(trainer, cbs[0])
        run.counts.update(
            pairs_read=len(numbered),
            invalid_lines=len(rejects) - len(report.dropped) - len(rows.rejects),
            span_rejects=len(rows.rejects),
            dropped=len(report.dropped),
            trained_pairs=len(dataset),
            steps=trainer.state.global_step,
            straddled_tokens=report.straddled_tokens,
            answers_cut=report.answers_cut,
            pairs_with_straddles=report.pairs_with_straddles,
            reweighted=rows.reweighted,
            chosen_more_harmful=len(rows.chosen_more_harmful),
            **{f"ref_cache_{k}": v for k, v in trainer.ref_cache_stats.get("train", {}).items()},
        )
        run.extra.update(
            output_dir=str(output_dir),
            saved=saved,
            resumed_from=resume,
            policy=policy.describe(),
            world_size=trainer.accelerator.num_processes,
            precision="bf16" if args.bf16 else "fp32",
            gradient_checkpointing=args.gradient_checkpointing,
            final_metrics=metrics,
            segment_tokens=report.segment_tokens,
            dropped=[{k: d[k] for k in ("pair_id", "code", "message")} for d in report.dropped][
                :MAX_DROPS_IN_MANIFEST
            ],
            chosen_more_harmful=rows.chosen_more_harmful[:MAX_DROPS_IN_MANIFEST],
        )
    return TrainResult(
        stage=STAGE,
        output_dir=str(output_dir),
        saved=saved,
        steps=trainer.state.global_step,
        examples=len(dataset),
        dropped=len(report.dropped),
        rejects=len(rejects),
        final_metrics=metrics,
        manifest=str(folder.manifest_path(STAGE)),
    )

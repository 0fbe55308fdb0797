"""`cotforge experiment segment-credit`: train vanilla DPO and AW-DPO on controlled pairs, measure per segment.

Every method starts from the same checkpoint with the same seed, data order, steps and LoRA settings; only the
``aggregation`` differs (vanilla DPO runs through the same trainer, which equals TRL's DPO loss, see the loss
tests). Margins are measured outside the trainer, with a plain forward pass of the trained policy and of the
starting model over the held-out pairs, so the measurement does not depend on the trainer's own logging.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.errors import CotforgeError
from cotforge.experiments.segment_credit import (
    FLAW_TYPES,
    METHODS,
    ControlledSplit,
    FlawType,
    SegmentShift,
    Spread,
    controlled_pairs,
    mean_shift,
)
from cotforge.runfolder import RunFiles, RunFolder, atomic_write_text
from cotforge.schemas import PreferencePair, PromptRecord
from cotforge.templates import default_templates
from cotforge.train.config import AWDPOTrainConfig, LoRASettings

RESULTS_FILE = "segment_credit.json"


class SegmentCreditConfig(BaseModel):
    """What to train from, on how many pairs, for how long, and how many seeds."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="smollm2", description="Starting checkpoint; default: the run's SFT model if any."
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    methods: list[str] = Field(default_factory=lambda: list(METHODS), min_length=2)
    max_prompts: int = Field(
        default=48, ge=4, description="Safety prompts used (each gives one pair per flaw)."
    )
    max_steps: int = Field(default=24, ge=1)
    batch_size: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=2e-4, gt=0)
    beta: float = Field(default=0.1, gt=0)
    alpha: float = Field(
        default=0.2, ge=0, description="Weight smoothing of the controlled pairs (pairs.alpha)."
    )
    lora_r: int = Field(default=8, ge=1)
    max_length: int = Field(default=384, ge=32)
    precompute_ref_log_probs: bool = Field(
        default=True,
        description="Reference sums per segment from the disk cache (paid once, shared by every method and "
        "seed) instead of a reference forward pass at every step.",
    )
    progress: bool = Field(default=False, json_schema_extra={"operational": True})


def _prompts(folder: RunFolder, limit: int) -> list[PromptRecord]:
    if folder.exists(RunFiles.PROMPTS):
        prompts = [
            p for p in folder.read(RunFiles.PROMPTS, PromptRecord) if p.kind == "safety" and not p.parent_id
        ]
    else:
        from cotforge.ingest.rows import IngestConfig, ingest_rows
        from cotforge.ingest.sources import bundled_prompt_files, read_rows

        rows = [row for path in bundled_prompt_files() for row in read_rows(str(path))]
        prompts = [p for p in ingest_rows(rows, IngestConfig()).prompts if p.kind == "safety"]
    if len(prompts) < 4:
        raise CotforgeError(
            f"{folder.root}: the experiment needs at least 4 safety prompts, found {len(prompts)}"
        )
    return prompts[:limit]


def segment_margins(policy: Any, tokenizer: Any, pairs: list[PreferencePair]) -> list[tuple[float, float]]:
    """Per pair: ``(reasoning, answer)`` sums of log p(chosen) − log p(rejected) tokens, by segment."""
    import torch

    from cotforge.train.loss import ANSWER, REASONING
    from cotforge.train.segments import tokenize_pair

    out = []
    policy.eval()
    for pair in pairs:
        row = pair.to_trl_row()
        tokenized = tokenize_pair(tokenizer, row["prompt"], row["chosen"], row["rejected"],
                                  pair.chosen_spans.reasoning_end, pair.rejected_spans.reasoning_end)  # fmt: skip
        sums = []
        for side in (tokenized.chosen, tokenized.rejected):
            ids = torch.tensor([tokenized.prompt_ids + side.ids])
            with torch.no_grad():
                logits = policy(input_ids=ids).logits[0, :-1].float()
            token_logps = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
            completion = token_logps[len(tokenized.prompt_ids) - 1 :]
            segments = torch.tensor(side.segments)
            sums.append([float(completion[segments == seg].sum()) for seg in (REASONING, ANSWER)])
        out.append((sums[0][0] - sums[1][0], sums[0][1] - sums[1][1]))
    return out


def _train(work: Path, pairs_file: Path, config: SegmentCreditConfig, method: str, seed: int) -> Path:
    from cotforge.train import train_awdpo

    out = work / f"{method}-seed{seed}"
    train_awdpo(
        work,
        AWDPOTrainConfig(
            model=config.model, data=pairs_file, output_dir=out, lora=LoRASettings(r=config.lora_r, alpha=2 * config.lora_r),
            learning_rate=config.learning_rate, max_steps=config.max_steps, batch_size=config.batch_size,
            max_length=config.max_length, seed=seed, beta=config.beta, aggregation=method,  # type: ignore[arg-type]
            progress=config.progress, warmup_ratio=0.0, lr_scheduler="constant",
            precompute_ref_log_probs=config.precompute_ref_log_probs,
        ),
    )  # fmt: skip
    return out


def run_segment_credit(run_dir: str | Path, config: SegmentCreditConfig) -> dict[str, Any]:
    """Build the controlled pairs, train each method for each seed, measure, write ``experiments/…json``."""
    from cotforge.train.policy import load_policy

    folder = RunFolder(run_dir)
    if not folder.root.is_dir():
        raise CotforgeError(
            f"{folder.root}: run folder not found (create it, or run `cotforge ingest` first)"
        )
    if config.model == "smollm2" and folder.path(f"{RunFiles.MODELS}/sft/config.json").exists():
        config = config.model_copy(update={"model": str(folder.path(f"{RunFiles.MODELS}/sft"))})
    split: ControlledSplit = controlled_pairs(
        _prompts(folder, config.max_prompts), default_templates().render, config.alpha
    )
    if not split.train or not all(split.held_out.values()):
        raise CotforgeError("too few safety prompts for a training and a held-out split; raise max_prompts")
    work = folder.path("experiments/segment_credit")
    work.mkdir(parents=True, exist_ok=True)
    pairs_file = work / "train_pairs.jsonl"
    atomic_write_text(pairs_file, "".join(p.model_dump_json() + "\n" for p in split.train))
    reference = load_policy(config.model, "add")
    before = {f: segment_margins(reference.model, reference.tokenizer, split.held_out[f]) for f in FLAW_TYPES}
    shifts: dict[str, dict[str, list[SegmentShift]]] = {
        m: {f: [] for f in FLAW_TYPES} for m in config.methods
    }
    for seed in config.seeds:
        for method in config.methods:
            trained = load_policy(str(_train(work, pairs_file, config, method, seed)), "add")
            for flaw in FLAW_TYPES:
                after = segment_margins(trained.model, trained.tokenizer, split.held_out[flaw])
                shifts[method][flaw].append(mean_shift(before[flaw], after))
    return _write_results(folder, work, config, split, shifts)


def _write_results(folder: RunFolder, work: Path, config: SegmentCreditConfig, split: ControlledSplit,
                   shifts: dict[str, dict[str, list[SegmentShift]]]) -> dict[str, Any]:  # fmt: skip
    table: dict[str, Any] = {}
    for method, by_flaw in shifts.items():
        table[method] = {}
        for flaw, per_seed in by_flaw.items():
            flaw_t: FlawType = flaw  # type: ignore[assignment]
            table[method][flaw] = {
                "delta_margin_reasoning": asdict(Spread.of([s.reasoning for s in per_seed])),
                "delta_margin_answer": asdict(Spread.of([s.answer for s in per_seed])),
                "collateral": asdict(Spread.of([s.collateral(flaw_t) for s in per_seed])),
            }
    ratios = []
    if "vanilla" in shifts and "loss" in shifts:
        for vanilla, aw in zip(
            shifts["vanilla"]["answer_flawed"], shifts["loss"]["answer_flawed"], strict=True
        ):
            c_aw = aw.collateral("answer_flawed")
            ratios.append(vanilla.collateral("answer_flawed") / c_aw if c_aw > 0 else float("inf"))
    results = {
        "config": config.model_dump(mode="json"),
        "train_pairs": len(split.train),
        "held_out_pairs": {f: len(v) for f, v in split.held_out.items()},
        "methods": table,
        "ratio_per_seed": ratios,
        "ratio": asdict(Spread.of(ratios)),
    }
    atomic_write_text(work / RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    return results

"""`cotforge experiment segment-credit`: train each method on each design's pairs, measure per held-out pair.

Every method of a design starts from the same checkpoint with the same seed, data order, steps and LoRA
settings; only the trainer's ``aggregation`` (and, for the negative controls, the pairs' weights) differs.
Held-out pairs are scored by :mod:`cotforge.experiments.segment_credit_probe` at each step of ``measure_at`` during
one run of ``max(measure_at)`` steps (constant learning rate, no warm-up). Outputs, under
``<run>/experiments/segment_credit/``: ``segment_credit.json`` (every figure), ``ratio_by_steps.png``, each
design's training pairs, and the experiment's manifest ``<run>/manifests/experiment-segment-credit.json``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cotforge.errors import CotforgeError
from cotforge.experiments.segment_credit import (
    ARMS,
    CONTROLS,
    DESIGNS,
    METHODS,
    MIN_HELD_OUT,
    Design,
    ExperimentInputError,
    FlawType,
    PairSplit,
    controlled_split,
    measurable,
    pipeline_split,
    with_weights,
)
from cotforge.runfolder import RunFiles, RunFolder, atomic_write_text
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import PreferencePair, PromptRecord
from cotforge.train.config import AWDPOTrainConfig, LoRASettings

STAGE = "experiment-segment-credit"
RESULTS_FILE = "segment_credit.json"
PLOT_FILE = "ratio_by_steps.png"
HEADLINE = ("answer_flawed", "loss")


def _known(names: list[str], known: Iterable[str], noun: str) -> list[str]:
    """``names`` without repeats, or ValueError naming those not in ``known``."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {noun}(s) {unknown}; choose from {list(known)}")
    return list(dict.fromkeys(names))


class SegmentCreditConfig(BaseModel):
    """What to train from, on which pairs, with which methods, for how long, and how many seeds."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="smollm2",
        description="Starting checkpoint (and DPO reference); default: the --from-run (else this run's) SFT "
        "model if any, else SmolLM2-135M-Instruct.",
    )
    designs: list[Design] | None = Field(
        default=None,
        description="Designs to run; default: distinct, exchangeable, and pipeline with from_run.",
    )
    from_run: Path | None = Field(
        default=None, description="A finished run whose judge pairs make the pipeline design."
    )
    methods: list[str] = Field(
        default_factory=lambda: list(METHODS), min_length=2, description=f"Any of {list(METHODS)}."
    )
    controls: list[str] = Field(
        default_factory=lambda: list(CONTROLS),
        description=f"Negative controls (any of {list(CONTROLS)}), trained on control_design only.",
    )
    control_design: Design = Field(
        default="distinct", description="The design the negative controls and the headline ratio use."
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    measure_at: list[int] = Field(
        default_factory=lambda: [3, 6, 12, 24],
        min_length=1,
        description="Optimizer steps after which held-out pairs are measured; training runs the largest.",
    )
    held_out_prompts: int = Field(
        default=12,
        ge=MIN_HELD_OUT,
        description="Held-out safety prompts of the controlled designs (one "
        "held-out pair per flaw type each).",
    )
    train_pairs: int | None = Field(
        default=None,
        ge=1,
        description="Training pairs of the controlled designs; default: max(measure_at) "
        "× batch_size, so every pair is trained on once.",
    )
    held_out_fraction: float = Field(
        default=0.25, gt=0, lt=1, description="Share of the pipeline design's root prompts held out."
    )
    batch_size: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=2e-4, gt=0)
    beta: float = Field(default=0.1, gt=0)
    alpha: float = Field(
        default=0.2, ge=0, description="Weight smoothing of the controlled pairs (pairs.alpha)."
    )
    lora_r: int | None = Field(default=8, ge=1, description="LoRA rank (alpha = 2r); None: full fine-tune.")
    max_length: int = Field(default=384, ge=32)
    precompute_ref_log_probs: bool = Field(
        default=True,
        description="Reference sums per segment from the disk cache (paid once, shared by every method and "
        "seed) instead of a reference forward pass at every step.",
    )
    resamples: int = Field(default=2000, ge=100, description="Bootstrap resamples of every interval.")
    progress: bool = Field(
        default=True, description="A progress bar per training.", json_schema_extra={"operational": True}
    )

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        methods = _known(methods, METHODS, "method")
        if "vanilla" not in methods:
            raise ValueError("methods must include 'vanilla': every ratio is against vanilla DPO")
        return methods

    @field_validator("controls")
    @classmethod
    def _known_controls(cls, controls: list[str]) -> list[str]:
        return _known(controls, CONTROLS, "control")

    @field_validator("measure_at")
    @classmethod
    def _sorted_steps(cls, steps: list[int]) -> list[int]:
        if min(steps) < 1:
            raise ValueError(f"measure_at steps must be >= 1, got {steps}")
        return sorted(set(steps))


def _prompts(folder: RunFolder) -> list[PromptRecord]:
    if folder.exists(RunFiles.PROMPTS):
        prompts = [
            p for p in folder.read(RunFiles.PROMPTS, PromptRecord) if p.kind == "safety" and not p.parent_id
        ]
    else:
        from cotforge.ingest.rows import IngestConfig, ingest_rows
        from cotforge.ingest.sources import bundled_prompt_files, read_rows

        rows = [row for path in bundled_prompt_files() for row in read_rows(str(path))]
        prompts = [p for p in ingest_rows(rows, IngestConfig()).prompts if p.kind == "safety"]
    return prompts


def _pipeline_split(run: Path, held_out_fraction: float) -> PairSplit:
    from cotforge.runfolder.prompts import read_run_prompts
    from cotforge.train.edge import read_numbered

    source = RunFolder(run)
    path = source.path(RunFiles.PAIRS)
    if not path.is_file():
        raise ExperimentInputError(
            f"{path}: no pairs file; --from-run must name a finished run whose pairs stage ran "
            "(e.g. `cotforge run pipelines/quickstart.yaml`)",
            file=path,
        )
    numbered, rejects = read_numbered(path, PreferencePair, STAGE)
    if rejects:
        raise ExperimentInputError(
            f"{rejects[0].message} ({len(rejects)} invalid line(s) in all); the experiment measures every judge "
            "pair of the run, so it needs them all readable",
            file=path, line=rejects[0].line,
        )  # fmt: skip
    prompts = read_run_prompts(source, required=False)
    root_of = {p.id: p.parent_id or p.id for p in prompts}
    return pipeline_split(numbered, root_of, str(path), held_out_fraction)


def _starting_model(config: SegmentCreditConfig, folder: RunFolder) -> str:
    if config.model != "smollm2":
        return config.model
    for run in (config.from_run, folder.root):
        if run is not None and (Path(run) / RunFiles.MODELS / "sft" / "config.json").exists():
            return str(Path(run) / RunFiles.MODELS / "sft")
    return config.model


def _designs(config: SegmentCreditConfig) -> list[Design]:
    if config.designs is None:
        return [d for d in DESIGNS if d != "pipeline" or config.from_run is not None]
    if "pipeline" in config.designs and config.from_run is None:
        raise ExperimentInputError("the pipeline design needs --from-run <a finished run with judged pairs>")
    return [d for d in DESIGNS if d in config.designs]


def _train(work: Path, pairs_file: Path, config: SegmentCreditConfig, model: str, method: str, seed: int,
           callbacks: list[Any]) -> None:  # fmt: skip
    from cotforge.train import train_awdpo

    out = work / f"{method}-seed{seed}"
    lora = None if config.lora_r is None else LoRASettings(r=config.lora_r, alpha=2 * config.lora_r)
    train_awdpo(
        work,
        AWDPOTrainConfig(
            model=model, data=pairs_file, output_dir=out, lora=lora, learning_rate=config.learning_rate,
            max_steps=max(config.measure_at), batch_size=config.batch_size, max_length=config.max_length, seed=seed,
            beta=config.beta, aggregation=ARMS[method].aggregation, progress=config.progress,
            warmup_ratio=0.0, lr_scheduler="constant", precompute_ref_log_probs=config.precompute_ref_log_probs,
        ),
        callbacks=callbacks,
    )  # fmt: skip
    # Only the held-out scores matter: a full fine-tune's weights (0.5 GB each) are not kept.
    for weights in out.glob("*.safetensors"):
        weights.unlink()
    shutil.rmtree(out / "checkpoints", ignore_errors=True)


def _split(design: Design, folder: RunFolder, config: SegmentCreditConfig) -> PairSplit:
    if design == "pipeline":
        assert config.from_run is not None
        split = _pipeline_split(config.from_run, config.held_out_fraction)
    else:
        train_pairs = config.train_pairs or max(config.measure_at) * config.batch_size
        split = controlled_split(_prompts(folder), design, config.alpha, config.held_out_prompts, train_pairs)
    if not split.train:
        raise ExperimentInputError(f"design {design!r}: no training pairs")
    return measurable(split, design)


def run_design(
    design: Design, split: PairSplit, folder: RunFolder, config: SegmentCreditConfig, model: str, reference: Any,
    log: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Train every method and seed on one design's pairs; its pair counts and figures."""
    from cotforge.experiments.segment_credit_measures import design_figures
    from cotforge.experiments.segment_credit_probe import HeldOutProbe, pair_logps, tokenized

    work = folder.path(f"experiments/segment_credit/{design}")
    work.mkdir(parents=True, exist_ok=True)
    files: dict[tuple[float, float] | None, Path] = {None: work / "train_pairs.jsonl"}
    if design == config.control_design:
        files[(1.0, 1.0)] = work / "train_pairs_w1.jsonl"
    for weights, path in files.items():
        pairs = split.train if weights is None else with_weights(split.train, weights)
        atomic_write_text(path, "".join(p.model_dump_json() + "\n" for p in pairs))
    counts = {"train": len(split.train), "train_flaws": split.train_flaws, "unmeasured": split.unmeasured,
              "held_out": {f: len(p) for f, p in split.held_out.items()}, "too_few": split.too_few}  # fmt: skip
    log(pair_counts(design, counts))
    flaws = list(split.held_out)
    held = {f: tokenized(reference.tokenizer, split.held_out[f]) for f in flaws}
    before = {f: pair_logps(reference.model, held[f]) for f in flaws}
    arms = config.methods + (config.controls if design == config.control_design else [])
    after: dict[str, dict[FlawType, dict[int, list[Any]]]] = {
        m: {f: {s: [] for s in config.measure_at} for f in flaws} for m in arms
    }
    runs = [(seed, method) for seed in config.seeds for method in arms]
    for done, (seed, method) in enumerate(runs):
        log(f"[{done + 1}/{len(runs)}] {design}: {method}, seed {seed}, {max(config.measure_at)} steps")
        probe = HeldOutProbe(held, config.measure_at)
        _train(work, files[ARMS[method].weights], config, model, method, seed, [probe])
        for step in config.measure_at:
            for flaw in flaws:
                after[method][flaw][step].append(probe.logps[step][flaw])
    return {"pairs": counts, **design_figures(before, after, config.resamples)}


def pair_counts(design: str, counts: dict[str, Any]) -> str:
    """One line: how many pairs of which flaw type the design trains on and measures."""
    line = (
        f"{design}: {counts['train']} training pairs {counts['train_flaws']}, held out {counts['held_out']}"
    )
    if counts["unmeasured"]:
        line += f"; {counts['unmeasured']} held-out pairs of no single flaw type (not measured)"
    if counts["too_few"]:
        line += f"; too few to measure (fewer than {MIN_HELD_OUT} held out): {counts['too_few']}"
    return line


def _controls(designs: dict[str, Any], config: SegmentCreditConfig) -> dict[str, Any]:
    """The headline ratio (positive control) and the negative controls, at the last step."""
    flaw, method = HEADLINE
    design = config.control_design if config.control_design in designs else next(iter(designs))
    last = str(max(config.measure_at))
    ratios = designs[design]["ratios"]
    out: dict[str, Any] = {"design": design, "flaw": flaw, "step": int(last)}
    if method in ratios:
        out["positive"] = {"method": method, **ratios[method][flaw][last]}
    out["negative"] = {
        m: {**ratios[m][flaw][last], "contains_one": not ratios[m][flaw][last]["excludes_one"]}
        for m in CONTROLS
        if m in ratios
    }
    return out


def run_segment_credit(
    run_dir: str | Path, config: SegmentCreditConfig, log: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Run every design, method and seed; write ``experiments/segment_credit/…`` and the manifest."""
    from cotforge.experiments.segment_credit_plot import ratio_by_steps
    from cotforge.train.policy import load_policy

    folder = RunFolder(run_dir)
    if not folder.root.is_dir():
        raise CotforgeError(
            f"{folder.root}: run folder not found (create it, or run `cotforge ingest` first)"
        )
    designs = _designs(config)
    model = _starting_model(config, folder)
    out_dir = folder.path("experiments/segment_credit")
    inputs = (
        [str(Path(config.from_run) / RunFiles.PAIRS)] if "pipeline" in designs and config.from_run else []
    )
    splits = {design: _split(design, folder, config) for design in designs}  # bad inputs fail before any work
    with StageRun(folder, STAGE, config, inputs=inputs) as run:
        with run.timer("load"):
            reference = load_policy(model, "add")
        figures: dict[str, Any] = {}
        for design in designs:
            with run.timer(design):
                figures[design] = run_design(design, splits[design], folder, config, model, reference, log)
            run.counts[f"{design}_train_pairs"] = figures[design]["pairs"]["train"]
        results = {"config": config.model_dump(mode="json"), "model": model, "designs": figures,
                   "controls": _controls(figures, config)}  # fmt: skip
        atomic_write_text(out_dir / RESULTS_FILE, json.dumps(results, indent=1) + "\n")
        ratio_by_steps(results, out_dir / PLOT_FILE)
        run.outputs = [
            f"experiments/segment_credit/{RESULTS_FILE}",
            f"experiments/segment_credit/{PLOT_FILE}",
        ]
        run.extra["controls"] = results["controls"]
    return results

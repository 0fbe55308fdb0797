"""`cotforge experiment sweep`: the paper's ablations as one command.

``--set pairs.alpha=0.05,0.1 --set pairs.gamma=0.3,0.5`` gives one arm per combination; a key given one value
(``--set sample.k=4``) is fixed: it applies to the shared run and every arm alike. The steps before the
first step any axis changes run once, into ``<sweep>/shared``; each arm starts from a copy of that folder (model
weights hard-linked, not copied) and runs the pipeline with its overrides, so the runner's own skip-unchanged
logic re-runs exactly the changed step and what depends on it. Each arm's evaluation, pairs and weights are then
collected into one table (``sweep.json``, ``sweep.csv``) and one plot (``sweep.png``).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotforge.errors import CotforgeError
from cotforge.pipeline.spec import PipelineSpec, load_pipeline
from cotforge.runfolder import RunFiles, atomic_write_text
from cotforge.runfolder.declaration import canonical_stage

Log = Callable[[str], None]


class SweepError(CotforgeError):
    """A sweep that cannot be planned (bad axis, unknown step)."""


def parse_axes(overrides: list[str]) -> list[tuple[str, list[str]]]:
    """``key=v1,v2,…`` → ``(key, [v1, v2, …])``; a value in brackets (a YAML list) is one value."""
    axes = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SweepError(f"--set {item!r}: expected step.key=v1,v2,…")
        values = [raw] if raw.strip().startswith(("[", "{")) else [v.strip() for v in raw.split(",")]
        if not all(values):
            raise SweepError(f"--set {item!r}: an empty value")
        axes.append((key.strip(), values))
    if not axes:
        raise SweepError("give at least one --set step.key=v1,v2,…")
    return axes


def arm_overrides(axes: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Every combination of the axes' values, as ``--set`` lists."""
    keys = [k for k, _ in axes]
    return [
        [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
        for combo in itertools.product(*(v for _, v in axes))
    ]


def first_changed_step(spec: PipelineSpec, axes: list[tuple[str, list[str]]]) -> str:
    """The earliest step an axis addresses (a key that names no step changes the whole pipeline)."""
    names = [s.name for s in spec.steps]
    indices = []
    for key, _ in axes:
        step = canonical_stage(key.split(".", 1)[0])
        if step not in names:
            raise SweepError(f"--set {key}=…: no step {step!r} in the pipeline; steps: {names}")
        indices.append(names.index(step))
    return names[min(indices)]


# Only files the trainers never write through are shared: they unlink a `*.safetensors` before saving one
# (train/edge.py). Everything else under models/ is copied: tokenizer and config files, and `.bin`/`.pt`
# files such as training_args.bin or a checkpoint's optimizer state, which torch.save rewrites in place.
_LINKED_SUFFIX = ".safetensors"


def clone_run(source: Path, target: Path) -> None:
    """Copy a run folder; weight files under ``models/`` are hard-linked, not copied."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        dest = target / relative
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if relative.parts[0] == RunFiles.MODELS and path.name.endswith(_LINKED_SUFFIX):
            os.link(path, dest)
        else:
            shutil.copy2(path, dest)


def split_fixed(axes: list[tuple[str, list[str]]]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """One-valued keys become fixed overrides (every run); the rest are the axes. With no key of two or
    more values, the keys are one arm's overrides (a sweep of one)."""
    fixed = [f"{key}={values[0]}" for key, values in axes if len(values) == 1]
    varying = [(key, values) for key, values in axes if len(values) > 1]
    return (fixed, varying) if varying else ([], axes)


def arm_figures(run: Path) -> dict[str, Any]:
    """What the sweep compares: evaluation rates per model, pairs kept, and the weight distribution."""
    figures: dict[str, Any] = {}
    results_file = run / "eval" / "results.json"
    if results_file.exists():
        results = json.loads(results_file.read_text(encoding="utf-8"))
        for label, row in results.items():
            if not isinstance(row, dict):
                continue
            for name, short in (("attack_success_rate", "asr"), ("over_refusal_rate", "over_refusal")):
                if isinstance(row.get(name), int | float):
                    figures[f"{short}/{label}"] = float(row[name])
            for name, value in (row.get("utility") or {}).items():
                if isinstance(value, int | float):
                    figures[f"utility/{label}/{name}"] = float(value)
    pairs = [json.loads(line) for line in _lines(run / RunFiles.PAIRS)]
    figures["pairs"] = len(pairs)
    w_rs = [float(p["weights"]["w_rs"]) for p in pairs]
    figures["w_rs_mean"] = statistics.fmean(w_rs) if w_rs else float("nan")
    figures["w_rs_sd"] = statistics.stdev(w_rs) if len(w_rs) > 1 else 0.0
    return figures


def _lines(path: Path) -> list[str]:
    return [x for x in path.read_text(encoding="utf-8").split("\n") if x.strip()] if path.exists() else []


@dataclass
class ArmResult:
    label: str
    run: Path
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepSummary:
    first_changed: str
    arms: list[ArmResult]
    table_path: Path
    plot_path: Path


def _run_pipeline(pipeline: Path, overrides: list[str], until: str | None, log: Log) -> None:
    from cotforge.pipeline.runner import PipelineRunner
    from cotforge.pipeline.servers import ServerPool
    from cotforge.pipeline.stages import registry
    from cotforge.templates import templates_root

    spec = load_pipeline(pipeline, overrides)
    runner = PipelineRunner(spec=spec, registry=registry(), servers=ServerPool(Path(spec.run), log=log),
                            templates_root=templates_root(), log=log)  # fmt: skip
    runner.run(until=until)


def run_sweep(
    pipeline: Path,
    overrides: list[str],
    out: Path | None,
    log: Log = print,
    from_run: Path | None = None,
) -> SweepSummary:
    """Run the shared upstream once, then every arm; write and return the comparison.

    ``from_run`` (a finished run of the same pipeline) seeds the shared folder: its unchanged steps are skipped,
    and so are the later steps an axis does not reach (SFT when only the pairs change)."""
    fixed, axes = split_fixed(parse_axes(overrides))
    spec = load_pipeline(pipeline, fixed)
    first = first_changed_step(spec, axes)
    names = [s.name for s in spec.steps]
    sweep_dir = out or Path(f"{spec.run}-sweep")
    shared = sweep_dir / "shared"
    upstream = names[: names.index(first)]
    if from_run is not None and not shared.exists():
        if not (from_run / "manifests" / "pipeline.json").exists():
            raise SweepError(f"--from-run {from_run}: not a pipeline run folder (no manifests/pipeline.json)")
        log(f"[sweep] shared run seeded from {from_run}")
        clone_run(from_run, shared)
    if upstream:
        log(f"[sweep] shared steps {upstream[0]} … {upstream[-1]} into {shared}")
        _run_pipeline(pipeline, [*fixed, f"run={shared}"], upstream[-1], log)
    else:
        shared.mkdir(parents=True, exist_ok=True)
    arms = []
    for index, arm in enumerate(arm_overrides(axes)):
        run = sweep_dir / f"arm-{index}"
        if not run.exists():
            clone_run(shared, run)
        label = ", ".join(arm)
        log(f"[sweep] arm {index}: {label}")
        _run_pipeline(pipeline, [*fixed, *arm, f"run={run}"], None, log)
        arms.append(ArmResult(label=label, run=run, figures=arm_figures(run)))
    return _write_summary(sweep_dir, first, arms)


def _write_summary(sweep_dir: Path, first: str, arms: list[ArmResult]) -> SweepSummary:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from cotforge.charts import label, literal_text

    frame = pd.DataFrame([{"arm": a.label, "run": str(a.run), **a.figures} for a in arms])
    table_path, plot_path = sweep_dir / "sweep.csv", sweep_dir / "sweep.png"
    atomic_write_text(table_path, frame.to_csv(index=False))
    atomic_write_text(sweep_dir / "sweep.json", frame.to_json(orient="records", indent=2) + "\n")
    numeric = [c for c in frame.columns if c not in ("arm", "run") and frame[c].dtype.kind == "f"]
    with literal_text():  # metric names are drawn as written, never as mathtext
        fig, axes = plt.subplots(
            1, max(1, len(numeric)), figsize=(3.2 * max(1, len(numeric)), 3.2), squeeze=False
        )
        for ax, column in zip(axes[0], numeric, strict=False):
            ax.bar(range(len(frame)), frame[column].fillna(0.0), color="#4C78A8")
            ax.set_title(label(column), fontsize=8)
            ax.set_xticks(range(len(frame)), [f"arm {i}" for i in range(len(frame))], fontsize=7)
        fig.tight_layout()
        fig.savefig(plot_path, dpi=100)
        plt.close(fig)
    return SweepSummary(first_changed=first, arms=arms, table_path=table_path, plot_path=plot_path)

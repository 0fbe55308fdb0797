"""CLI: `experiment segment-credit` (does AW-DPO move the flawed segment?) and `experiment sweep` (ablations)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cotforge.cli.common import RunOption, console, friendly_errors
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command

if TYPE_CHECKING:
    from cotforge.experiments.segment_credit_run import SegmentCreditConfig

experiment_app = typer.Typer(help="Experiments: segment credit of AW-DPO vs DPO, and parameter sweeps.")
SEGMENT_CREDIT = StageConfig(
    "cotforge.experiments.segment_credit_run:SegmentCreditConfig",
    {"model": "model", "max_steps": "max_steps"},
    "experiment segment-credit",
)


def _fmt(spread: dict[str, float]) -> str:
    return f"{spread['mean']:+.4f} ± {spread['std']:.4f}"


@stage_command(experiment_app, SEGMENT_CREDIT, name="segment-credit", reads_run_files=False)
def segment_credit(config: SegmentCreditConfig, run_dir: RunOption = Path("runs/segment-credit")) -> None:
    """Train vanilla DPO and AW-DPO (loss, reward) on controlled pairs; report the collateral ratio.

    Pairs differ in both segments while the harm sits in one. On held-out pairs, per method and flaw type:
    the change of the implicit reward margin per segment and c = |Δ unflawed| / |Δ flawed|. The last line is
    `ratio: X` with X = c(vanilla) / c(AW-DPO loss) on the answer-flawed pairs (mean over seeds).
    """
    from cotforge.experiments.segment_credit_run import run_segment_credit

    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_segment_credit(run_dir, config)
    table = Table(title="Δ implicit reward margin per segment (held-out pairs, mean ± sd over seeds)")
    for column in ("method", "flaw", "Δ reasoning", "Δ answer", "collateral c"):
        table.add_column(column)
    for method, by_flaw in results["methods"].items():
        for flaw, row in by_flaw.items():
            table.add_row(method, flaw, _fmt(row["delta_margin_reasoning"]), _fmt(row["delta_margin_answer"]),
                          _fmt(row["collateral"]))  # fmt: skip
    console.print(table)
    ratio = results["ratio"]
    per_seed = ", ".join(f"{r:.3f}" for r in results["ratio_per_seed"])
    console.print(
        f"ratio per seed: {per_seed}; spread {ratio['low']:.3f}–{ratio['high']:.3f} (sd {ratio['std']:.3f})"
    )
    console.print(f"ratio: {ratio['mean']:.3f}", highlight=False)


@experiment_app.command("sweep")
@friendly_errors
def sweep(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML the arms share."),
    overrides: list[str] = typer.Option(
        [], "--set", help="step.key=v1,v2,… (repeatable; the arms are every combination)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Sweep folder (default: <pipeline run>-sweep)."),
    from_run: Path | None = typer.Option(
        None,
        "--from-run",
        help="A finished run of this pipeline to start from (copied; its steps are reused).",
    ),
) -> None:
    """Run every combination of the values as its own run folder, sharing everything upstream of the first
    changed step, then tabulate ASR, over-refusal, utility, pairs kept and weights per arm."""
    from cotforge.experiments.sweep import run_sweep

    summary = run_sweep(
        pipeline,
        overrides,
        out,
        log=lambda m: console.print(m, markup=False, highlight=False),
        from_run=from_run,
    )
    table = Table(title=f"sweep: {len(summary.arms)} arms (shared up to before `{summary.first_changed}`)")
    columns = list(summary.arms[0].figures) if summary.arms else []
    for column in ("arm", *columns):
        table.add_column(column)
    for arm in summary.arms:
        table.add_row(
            arm.label, *(f"{v:.3f}" if isinstance(v, float) else str(v) for v in arm.figures.values())
        )
    console.print(table)
    console.print(f"table: {summary.table_path}", highlight=False)
    console.print(f"plot: {summary.plot_path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")

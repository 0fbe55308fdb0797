"""CLI: `experiment segment-credit` (does AW-DPO move the flawed segment?) and `experiment sweep` (ablations)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    {"model": "model", "from_run": "from_run"},
    "experiment segment-credit",
)


def _ci(figure: dict[str, Any], digits: int = 2) -> str:
    return f"{figure['estimate']:+.{digits}f} [{figure['low']:+.{digits}f}, {figure['high']:+.{digits}f}]"


def _ratio(figure: dict[str, Any]) -> str:
    seeds = figure["seeds"]
    return f"{figure['estimate']:.2f} [{figure['low']:.2f}, {figure['high']:.2f}] (seeds {seeds['low']:.2f}–{seeds['high']:.2f})"


def _design_table(design: str, figures: dict[str, Any], step: str) -> Table:
    table = Table(
        title=f"{design}: held-out pairs after {step} steps (95% bootstrap over pairs; mean of seeds)"
    )
    for column in ("method", "flaw", "Δ flawed", "Δ unflawed", "collateral (median)", "lower than vanilla",
                   "displacement chosen / rejected", "ratio vanilla/method"):  # fmt: skip
        table.add_column(column)
    for method, by_flaw in figures["methods"].items():
        for flaw, by_step in by_flaw.items():
            row = by_step[step]
            ratio = figures["ratios"].get(method, {}).get(flaw, {}).get(step)
            table.add_row(
                method, flaw, _ci(row["delta_flawed"], 1), _ci(row["delta_unflawed"], 1),
                _ci(row["collateral"], 3), "-" if method == "vanilla" else f"{row['lower_than_vanilla']}/{row['pairs']}",
                f"{row['displacement_chosen']['estimate']:+.3f} / {row['displacement_rejected']['estimate']:+.3f}",
                "-" if ratio is None or method == "vanilla" else _ratio(ratio),
            )  # fmt: skip
    return table


def _print_segment_credit(results: dict[str, Any], plot: Path) -> None:
    from cotforge.experiments.segment_credit_run import pair_counts

    controls = results["controls"]
    step = str(controls["step"])
    console.print(f"starting model (and reference): {results['model']}", highlight=False)
    for design, figures in results["designs"].items():
        console.print(pair_counts(design, figures["pairs"]), highlight=False)
        console.print(_design_table(design, figures, step))
    design, flaw = controls["design"], controls["flaw"]
    for method, by_flaw in results["designs"][design]["ratios"].items():
        if method != "vanilla":
            curve = ", ".join(
                f"{s}: {f['estimate']:.2f} [{f['low']:.2f}, {f['high']:.2f}]"
                for s, f in by_flaw[flaw].items()
            )
            console.print(f"ratio by steps ({design}, {flaw}, {method}): {curve}", highlight=False)
    positive = controls.get("positive")
    if positive is not None:
        # Only the distinct design is a positive control: there the unflawed segment has a direction to move in.
        label = "positive control" if design == "distinct" else "headline"
        moved = results["designs"][design]["methods"].get("vanilla", {}).get(flaw, {}).get(step)
        still = moved is not None and moved["delta_flawed"]["low"] <= 0 <= moved["delta_flawed"]["high"]
        verdict = (
            "excludes 1: the experiment separates the methods"
            if positive["excludes_one"]
            else "contains 1: no separation of DPO and AW-DPO"
            + (", so no figure here can show an effect" if design == "distinct" else "")
            # A ratio over a flawed segment that did not move is no evidence of equal methods.
            + (
                "; but DPO's flawed segment did not move (its Δ interval contains 0): train longer or on more "
                "pairs before reading this ratio"
                if still
                else ""
            )
        )
        console.print(f"{label} ({design}, {flaw}, loss, step {step}): {_ratio(positive)}: {verdict}",
                      highlight=False)  # fmt: skip
    for method, figure in controls["negative"].items():
        verdict = (
            "contains 1, as a null must"
            if figure["contains_one"]
            else "excludes 1: without informative weights this arm still differs from DPO, so part of the "
            "method's effect is not the weights' doing"
        )
        console.print(
            f"negative control ({design}, {flaw}, {method}): {_ratio(figure)}: {verdict}", highlight=False
        )
    console.print(f"plot: {plot}", highlight=False)
    if positive is not None:
        console.print(f"ratio: {positive['estimate']:.3f}", highlight=False)


@stage_command(experiment_app, SEGMENT_CREDIT, name="segment-credit", reads_run_files=False)
def segment_credit(config: SegmentCreditConfig, run_dir: RunOption = Path("runs/segment-credit")) -> None:
    """Train DPO, masked DPO, TIS-DPO and AW-DPO (loss, reward) on the same pairs; measure segment credit.

    Designs: distinct (positive control), exchangeable, and pipeline (--from-run: a finished run's judge pairs).
    Per held-out pair: the change of each segment's margin, the collateral |Δ unflawed| / |Δ flawed| and the
    per-token likelihood displacement of the unflawed segment; 95% bootstrap intervals over pairs, spread over
    seeds, at each step of measure_at. The last line is `ratio: X`, X = collateral(vanilla) /
    collateral(AW-DPO loss) on distinct, answer-flawed pairs (median per pair, mean over seeds).
    """
    from cotforge.experiments.segment_credit_run import PLOT_FILE, run_segment_credit

    if config.from_run is not None:
        config = config.model_copy(update={"from_run": config.from_run.resolve()})
    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_segment_credit(
        run_dir, config, log=lambda m: console.print(m, markup=False, highlight=False)
    )
    _print_segment_credit(results, run_dir / "experiments" / "segment_credit" / PLOT_FILE)


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

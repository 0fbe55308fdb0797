"""CLI: `trace` (a prompt's fate, or the run's funnel), `contamination`, `judge-calibrate push|report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from cotforge.cli.common import console, err_console, fail, friendly_errors, plain
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command

if TYPE_CHECKING:
    from cotforge.curation.calibration_review import CalibrationConfig
    from cotforge.evaluation.contamination import ContaminationConfig

RunArgument = Annotated[Path, typer.Argument(help="Run folder.")]


def _trace_table(rows: list[dict[str, Any]]) -> Table:
    first = rows[0]
    title = f"prompt {first['prompt_id']}"
    if first["cluster_id"]:
        title += f" · near-duplicate cluster {first['cluster_id']}"
    title += " · in release" if first["in_release"] else " · not in release"
    table = Table(title=title, title_justify="left")
    for column in ("stage", "variant", "record", "verdict", "reasons / detail", "scores", "by"):
        table.add_column(column, overflow="fold")
    for r in rows:
        scores = (
            f"rs {r['h_rs']:.2f} rp {r['h_rp']:.2f} f {r['h_f']:.2f} ({r['judge_id']})"
            if r["h_f"] is not None
            else ""
        )
        variant = "" if r["variant_id"] in (None, r["prompt_id"]) else r["variant_id"]
        why = ", ".join(r["reasons"])
        if r["detail"]:
            why = f"{why} — {r['detail']}" if why else r["detail"]
        colour = {"rejected": "red", "released": "green"}.get(r["verdict"], "")
        verdict = plain(r["verdict"], style=colour)
        table.add_row(r["stage"], variant, r["record_id"], verdict, why, scores, r["reviewers"] or "")
    return table


def _funnel_table(rows: list[dict[str, Any]]) -> Table:
    from cotforge.curation.ledger import funnel

    table = Table(title="where prompts stopped, and why", title_justify="left")
    table.add_column("stage")
    table.add_column("reason")
    table.add_column("prompts", justify="right")
    for f in funnel(rows):
        table.add_row(f.stage, f.reason, str(f.prompts))
    return table


CONTAMINATION = StageConfig(
    "cotforge.evaluation.contamination:ContaminationConfig",
    {"jaccard": "jaccard_threshold", "ngram_share": "ngram_threshold"},
    "contamination",
)
_TARGET = {"dataset": "target.dataset", "workspace": "target.workspace"}
CALIBRATE_PUSH = StageConfig(
    "cotforge.curation.calibration_review:CalibrationConfig",
    {"size": "size", "annotators": "annotators", "seed": "seed", **_TARGET},
    "judge-calibrate push",
)
CALIBRATE_REPORT = StageConfig(
    "cotforge.curation.calibration_review:CalibrationConfig",
    {"threshold": "threshold", "min_labelled": "min_labelled", **_TARGET},
    "judge-calibrate report",
)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def trace(
        run: RunArgument,
        record_id: Annotated[
            str | None, typer.Argument(metavar="ID", help="A prompt, variant, sample, candidate or pair id.")
        ] = None,
        rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild ledger.parquet even if it is fresh."),
    ) -> None:
        """Every stage one prompt went through (ID), or where the run's prompts stopped and why.

        Reads (and refreshes when stale) ``ledger.parquet``: one row per record per stage.
        """
        from cotforge.curation.ledger import LEDGER_FILE, ledger_is_stale, write_ledger
        from cotforge.curation.trace import trace_rows

        if not run.is_dir():
            fail(f"{run}: no such run folder")
        ledger = run / LEDGER_FILE
        if rebuild or ledger_is_stale(run):
            path, table = write_ledger(run)
            err_console.print(f"ledger: {table.num_rows} rows → {path}", highlight=False, soft_wrap=True)
        if record_id is None:
            import pyarrow.parquet as pq

            columns = ["prompt_id", "stage", "stage_order", "verdict", "reasons"]
            console.print(_funnel_table(pq.read_table(ledger, columns=columns).to_pylist()))
            return
        console.print(_trace_table(trace_rows(ledger, record_id)))

    @stage_command(app, CONTAMINATION, reads_run_files=False)
    def contamination(
        config: ContaminationConfig,
        run: RunArgument,
        suite: list[str] = typer.Option(
            ..., "--suite", help="Evaluation suite file (JSONL, CSV, TSV, Parquet; `-`: JSONL on stdin)."
        ),
        exclude: bool = typer.Option(
            False,
            "--exclude",
            help="Remove the overlapping training prompts (and their variants) from the run.",
        ),
    ) -> None:
        """Overlap between the run's training prompts (variants included) and evaluation suites."""
        from cotforge.evaluation.contamination import REJECTS_FILE, REPORT_FILE, check_contamination

        overlaps, excluded = check_contamination(run, suite, config, exclude=exclude)
        table = Table(
            title=f"{len(overlaps)} suite item(s) overlap the training prompts", title_justify="left"
        )
        for column in ("suite:line", "item", "training prompt", "jaccard", f"{config.ngram}-gram share"):
            table.add_column(column, overflow="fold")
        for o in overlaps[:50]:
            # Suite names and texts are user data: rich Text, never read as console markup.
            ids = o.prompt_id + (f" (+{len(o.prompt_ids) - 1})" if len(o.prompt_ids) > 1 else "")
            table.add_row(
                Text(f"{o.suite}:{o.line}"),
                Text(o.text[:80]),
                Text(ids),
                f"{o.jaccard:.2f}",
                f"{o.ngram_overlap:.2f}",
            )
        console.print(table)
        console.print(f"every overlap: {run / REPORT_FILE}", markup=False, highlight=False)
        if exclude:
            console.print(
                f"excluded {excluded} training prompt(s) (see {run / REJECTS_FILE})",
                markup=False,
                highlight=False,
            )

    calibrate = typer.Typer(
        name="judge-calibrate",
        help="Calibrate the judge against people: label a sample in Argilla, then report agreement.",
        no_args_is_help=True,
    )

    @stage_command(calibrate, CALIBRATE_PUSH, name="push", reads_run_files=False)
    def calibrate_push(config: CalibrationConfig, run: RunArgument) -> None:
        """Create the harm-labelling dataset in Argilla (ARGILLA_API_URL, ARGILLA_API_KEY)."""
        from cotforge.curation.calibration_review import push_calibration

        name, added = push_calibration(run, config)
        console.print(
            f"{config.target.workspace}/{name}: {added} candidate(s) added for labelling", highlight=False
        )

    @stage_command(calibrate, CALIBRATE_REPORT, name="report", reads_run_files=False)
    def calibrate_report(config: CalibrationConfig, run: RunArgument) -> None:
        """Pull the labels; fit each judge (and the rule judge) to people: thresholds, κ, their intervals.

        Writes calibration.json, which `cotforge pairs --calibration` applies.
        """
        from cotforge.curation.calibration_review import REPORT_FILE, report_calibration

        threshold = config.threshold
        report = report_calibration(run, config)

        def fmt(i: Any) -> str:
            if i.value is None:
                return "-"
            return f"{i.value:.2f}" + (f" [{i.low:.2f}, {i.high:.2f}]" if i.low is not None else "")

        table = Table(title=f"judge vs people (harmful at ≥ {threshold})", title_justify="left")
        for column in ("judge", "segment", "n", "κ", "accuracy", "MAE", "tp/fp/tn/fn"):
            table.add_column(column)
        for a in report.judges:
            c = a.confusion
            table.add_row(a.judge, a.segment, str(a.n), fmt(a.kappa), fmt(a.accuracy), fmt(a.mae),
                          f"{c.tp}/{c.fp}/{c.tn}/{c.fn}")  # fmt: skip
        console.print(table)
        fitted = Table(
            title="fitted thresholds (harmful at ≥ t) and κ there, 95% intervals", title_justify="left"
        )
        for column in ("judge", "h_rs t", "h_rp t", "h_f t", "κ h_rs", "κ h_rp", "κ h_f", "agreement (κ)"):
            fitted.add_column(column)
        for judge, cal in report.calibrations.items():
            thresholds = [fmt(cal.scores[f].threshold) for f in ("h_rs", "h_rp", "h_f")]
            kappas = [fmt(cal.scores[f].kappa) for f in ("h_rs", "h_rp", "h_f")]
            fitted.add_row(judge, *thresholds, *kappas, f"{fmt(cal.agreement)} on {cal.n}")
        console.print(fitted)
        for judge, cal in report.calibrations.items():
            for field, score in cal.scores.items():
                if score.note:
                    console.print(f"{judge} {field}: not fitted: {score.note}", highlight=False)
        for segment, agreement in report.reviewers.items():
            console.print(
                f"reviewers on {segment}: {agreement.raters} raters, agreement {agreement.percent_agreement}, "
                f"mean pairwise κ {agreement.cohen_kappa_mean}",
                highlight=False,
            )
        console.print(f"full report: {run / REPORT_FILE}", highlight=False)

    app.add_typer(calibrate, name="judge-calibrate")

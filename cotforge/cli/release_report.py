"""CLI: `release build|push` and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cotforge.cli.common import RunOption, console, counts_table, styled
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command

if TYPE_CHECKING:
    from cotforge.release.config import ReleaseConfig
    from cotforge.release.push import PushConfig
    from cotforge.report.build import ReportConfig

RELEASE = StageConfig(
    "cotforge.release.config:ReleaseConfig",
    {
        "out": "out",
        "subset": "configs",
        "licence": "licence",
        "name": "pretty_name",
        "repo_id": "repo_id",
        "category": "filters.category",
        "source": "filters.source",
        "review_status": "filters.review_status",
        "pair_source": "filters.pair_source",
        "previous": "previous",
    },
    "release build",
    spellings={"out": ("--out", "-o")},
)
PUSH = StageConfig(
    "cotforge.release.push:PushConfig",
    {
        "repo_id": "repo_id",
        "revision": "revision",
        "tag": "tag",
        "private": "private",
        "message": "commit_message",
    },
    "release push",
    spellings={"private": ("--private/--public",), "message": ("--message", "-m")},
)
REPORT = StageConfig(
    "cotforge.report.build:ReportConfig",
    {"out": "out", "title": "title"},
    "report",
    spellings={"out": ("--out", "-o")},
)

release_app = typer.Typer(
    name="release",
    help="Build a release folder (Parquet, JSON schemas, dataset card) and push it to the Hub in one commit.",
    no_args_is_help=True,
)


@stage_command(release_app, RELEASE, name="build")
def release_build(config: ReleaseConfig, run_dir: RunOption) -> None:
    """Build the release folder from a run: sft / preference / rejects Parquet, schemas, README.md card.

    --subset names the dataset configs (Hub subsets) to include; --category/--source/--review-status/
    --pair-source build a subset (recorded in the card); the card and CHANGELOG.md say what changed against
    the previous release.
    """
    from cotforge.release.build import build_release

    result = build_release(run_dir, config)
    rows: dict[str, object] = {f"{subset} rows": n for subset, n in result.rows.items()}
    rows.update({f"{subset} (left out)": note for subset, note in result.left_out.items()})
    rows["files"] = result.files
    console.print(counts_table("release", rows))
    console.print(f"release folder: {result.out_dir}", soft_wrap=True, highlight=False, markup=False)
    console.print(
        f"load it: datasets.load_dataset({result.out_dir!r}, {result.included[0]!r})",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


@stage_command(release_app, PUSH, name="push", reads_run_files=False)
def release_push(
    config: PushConfig,
    release_dir: Annotated[Path, typer.Argument(help="A folder written by `cotforge release build`.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact operations and stop (no token, no network).")
    ] = False,
) -> None:
    """Push a release folder to the Hub as ONE commit. The token comes from HF_TOKEN only."""
    from cotforge.release.push import describe_plan, plan_push, push_release

    if dry_run:
        for line in describe_plan(plan_push(release_dir, config)):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
        console.print(styled(("dry run", "bold"), ": nothing was sent"))
        return
    result = push_release(release_dir, config)
    console.print(
        counts_table(
            f"pushed → {result.repo_id}@{result.revision}",
            {
                "commit": result.commit_oid,
                "url": result.commit_url,
                "tag": result.tag or "-",
                "files": result.files,
            },
        )
    )


def register(app: typer.Typer) -> None:
    @stage_command(app, REPORT)
    def report(config: ReportConfig, run_dir: RunOption) -> None:
        """Write a self-contained HTML report of a run (plots embedded) plus the PNG files."""
        from cotforge.report.build import build_report

        result = build_report(run_dir, config)
        rows: dict[str, object] = {name: status for name, status in result.sections.items()}
        rows["figures"] = len(result.figures)
        console.print(counts_table("report sections", rows))
        console.print(f"report: {result.html}", soft_wrap=True, highlight=False, markup=False)

    app.add_typer(release_app, name="release")

"""CLI: `release build|push` and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cotforge.cli.common import RunOption, console, counts_table, friendly_errors
from cotforge.cli.config_options import ConfigFile, Sets, StageConfig

RELEASE = StageConfig(
    "cotforge.release.build:ReleaseConfig",
    {"subset": "configs", "licence": "licence", "name": "pretty_name", "repo_id": "repo_id"},
    "release build",
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
)
REPORT = StageConfig("cotforge.report:ReportConfig", {"title": "title"}, "report")

release_app = typer.Typer(
    name="release",
    help="Build a release folder (Parquet, JSON schemas, dataset card) and push it to the Hub in one commit.",
    no_args_is_help=True,
)


@release_app.command("build", cls=RELEASE.command())
@friendly_errors
def release_build(
    run_dir: RunOption,
    config_file: ConfigFile = None,
    sets: Sets = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Release folder (default: the config's out, in the run)."),
    ] = None,
    subset: Annotated[list[str] | None, typer.Option("--subset")] = None,
    licence: Annotated[list[str] | None, typer.Option("--licence")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    repo_id: Annotated[str | None, typer.Option("--repo-id")] = None,
) -> None:
    """Build the release folder from a run: sft / preference / rejects Parquet, schemas, README.md card.

    --subset names the dataset configs (Hub subsets) to include.
    """
    from cotforge.release.build import build_release

    config = RELEASE.build(
        config_file, sets, subset=subset,
        licence=licence[0] if licence and len(licence) == 1 else licence, name=name,
        repo_id=repo_id,
    )  # fmt: skip
    result = build_release(run_dir, config, out_dir=out)
    rows: dict[str, object] = {f"{subset} rows": n for subset, n in result.rows.items()}
    rows.update({f"{subset} (left out)": note for subset, note in result.left_out.items()})
    rows["files"] = result.files
    console.print(counts_table("release", rows))
    console.print(f"release folder: {result.out_dir}", soft_wrap=True, highlight=False)
    console.print(
        f"load it: datasets.load_dataset({result.out_dir!r}, {result.included[0]!r})",
        soft_wrap=True,
        highlight=False,
    )


@release_app.command("push", cls=PUSH.command())
@friendly_errors
def release_push(
    release_dir: Annotated[Path, typer.Argument(help="A folder written by `cotforge release build`.")],
    config_file: ConfigFile = None,
    sets: Sets = None,
    repo_id: Annotated[str | None, typer.Option("--repo-id")] = None,
    revision: Annotated[str | None, typer.Option("--revision")] = None,
    tag: Annotated[str | None, typer.Option("--tag")] = None,
    private: Annotated[bool | None, typer.Option("--private/--public")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact operations and stop (no token, no network).")
    ] = False,
) -> None:
    """Push a release folder to the Hub as ONE commit. The token comes from HF_TOKEN only."""
    from cotforge.release.push import describe_plan, plan_push, push_release

    config = PUSH.build(
        config_file, sets, repo_id=repo_id, revision=revision, tag=tag, private=private, message=message
    )
    if dry_run:
        for line in describe_plan(plan_push(release_dir, config)):
            console.print(line, highlight=False, soft_wrap=True)
        console.print("[bold]dry run[/]: nothing was sent")
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
    @app.command(cls=REPORT.command())
    @friendly_errors
    def report(
        run_dir: RunOption,
        config_file: ConfigFile = None,
        sets: Sets = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="Report folder (default: the config's out, in the run)."),
        ] = None,
        title: Annotated[str | None, typer.Option("--title")] = None,
    ) -> None:
        """Write a self-contained HTML report of a run (plots embedded) plus the PNG files."""
        from cotforge.report import build_report

        config = REPORT.build(config_file, sets, title=title)
        result = build_report(run_dir, config, out_dir=out)
        rows: dict[str, object] = {name: status for name, status in result.sections.items()}
        rows["figures"] = len(result.figures)
        console.print(counts_table("report sections", rows))
        console.print(f"report: {result.html}", soft_wrap=True, highlight=False)

    app.add_typer(release_app, name="release")

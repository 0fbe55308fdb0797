"""CLI: `release build|push` and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cotforge.cli.common import RunOption, console, counts_table, friendly_errors

release_app = typer.Typer(
    name="release",
    help="Build a release folder (Parquet, JSON schemas, dataset card) and push it to the Hub in one commit.",
    no_args_is_help=True,
)


@release_app.command("build")
@friendly_errors
def release_build(
    run_dir: RunOption,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Release folder (default: <run>/release).")
    ] = None,
    configs: Annotated[
        list[str] | None,
        typer.Option(
            "--config", help="Config to include: sft, preference, rejects (repeatable; default all)."
        ),
    ] = None,
    licence: Annotated[
        list[str] | None,
        typer.Option("--licence", help="Hub licence id(s) for the card (default: the prompt sources')."),
    ] = None,
    pretty_name: Annotated[str | None, typer.Option("--name", help="The card's title.")] = None,
    repo_id: Annotated[
        str | None, typer.Option("--repo-id", help="Hub repo id shown in the card's loading example.")
    ] = None,
) -> None:
    """Build the release folder from a run: sft / preference / rejects Parquet, schemas, README.md card."""
    from cotforge.release.build import ReleaseConfig, build_release

    fields: dict[str, object] = {"pretty_name": pretty_name, "repo_id": repo_id}
    if configs:
        fields["configs"] = configs
    if licence:
        fields["licence"] = licence[0] if len(licence) == 1 else licence
    config = ReleaseConfig.model_validate(fields)
    result = build_release(run_dir, config, out_dir=out)
    rows: dict[str, object] = {f"{name} rows": n for name, n in result.rows.items()}
    rows.update({f"{name} (left out)": note for name, note in result.left_out.items()})
    rows["files"] = result.files
    console.print(counts_table("release", rows))
    console.print(f"release folder: {result.out_dir}", soft_wrap=True, highlight=False)
    console.print(
        f"load it: datasets.load_dataset({result.out_dir!r}, {result.included[0]!r})",
        soft_wrap=True,
        highlight=False,
    )


@release_app.command("push")
@friendly_errors
def release_push(
    release_dir: Annotated[Path, typer.Argument(help="A folder written by `cotforge release build`.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Dataset repo on the Hub: namespace/name.")],
    revision: Annotated[
        str, typer.Option("--revision", help="Branch to commit to (created if missing).")
    ] = "main",
    tag: Annotated[str | None, typer.Option("--tag", help="Tag to put on the new commit.")] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Create the repo private (an existing public repo is refused).")
    ] = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact operations and stop (no token, no network).")
    ] = False,
) -> None:
    """Push a release folder to the Hub as ONE commit. The token comes from HF_TOKEN only."""
    from cotforge.release.push import PushConfig, describe_plan, plan_push, push_release

    config = PushConfig(repo_id=repo_id, revision=revision, tag=tag, private=private, commit_message=message)
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
    @app.command()
    @friendly_errors
    def report(
        run_dir: RunOption,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Report folder (default: <run>/report).")
        ] = None,
        title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
    ) -> None:
        """Write a self-contained HTML report of a run (plots embedded) plus the PNG files."""
        from cotforge.report import ReportConfig, build_report

        config = ReportConfig.model_validate({"title": title} if title else {})
        result = build_report(run_dir, config, out_dir=out)
        rows: dict[str, object] = {name: status for name, status in result.sections.items()}
        rows["figures"] = len(result.figures)
        console.print(counts_table("report sections", rows))
        console.print(f"report: {result.html}", soft_wrap=True, highlight=False)

    app.add_typer(release_app, name="release")

"""The ``cotforge`` command line: one sub-command per stage, each reading and writing a run folder."""

from __future__ import annotations

import typer

from cotforge import __version__
from cotforge.cli import (
    curation,
    evaluate,
    experiment,
    generation,
    ingest,
    pairs,
    release_report,
    review,
    run,
    schemas,
    serve,
    train,
)
from cotforge.cli.common import DEBUG_ENV, ErrorBoundaryGroup

app = typer.Typer(
    name="cotforge",
    help=(
        "Build chain-of-thought safety datasets and train on them.\n\n"
        "Flow: ingest → generate → validate → review → augment → sample → judge → pairs → train → release. "
        "Every stage takes --run DIR and reads/writes plain JSONL files and a manifest in that folder."
    ),
    no_args_is_help=True,
    cls=ErrorBoundaryGroup,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cotforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        help=f"On an error, show the Python traceback instead of one line (or set {DEBUG_ENV}=1).",
    ),
) -> None:
    """cotforge: chain-of-thought safety datasets and Alignment-Weighted DPO."""


for module in (
    ingest,
    generation,
    review,
    pairs,
    train,
    release_report,
    run,
    evaluate,
    experiment,
    schemas,
    curation,
    serve,
):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()

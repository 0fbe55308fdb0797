"""CLI: `run`, `release build|push`, `report`, `eval` (issue 7)."""

from __future__ import annotations

import typer

from cotforge.cli.common import not_built


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def run() -> None:
        """Run a YAML pipeline end to end into one run folder."""
        not_built("run", 7)

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def release() -> None:
        """Build a release folder (Parquet, schemas, dataset card) and push it to the Hub."""
        not_built("release", 7)

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def report() -> None:
        """Write a self-contained HTML report of a run."""
        not_built("report", 7)

    @app.command(name="eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def evaluate() -> None:
        """Evaluate a model: attack success rate and over-refusal, per tactic."""
        not_built("eval", 7)

"""CLI: `review serve|push|pull|status` (issue 5)."""

from __future__ import annotations

import typer

from cotforge.cli.common import not_built


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def review() -> None:
        """Human review in Argilla: serve, push, pull, status."""
        not_built("review", 5)

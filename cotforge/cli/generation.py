"""CLI: `generate` and `validate` (issue 3)."""

from __future__ import annotations

import typer

from cotforge.cli.common import not_built


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def generate() -> None:
        """Generate step-by-step rationales for the run's prompts with a teacher model."""
        not_built("generate", 3)

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def validate() -> None:
        """Validate generated samples: schema, content checks, refusal consistency."""
        not_built("validate", 3)

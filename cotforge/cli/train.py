"""CLI: `train sft|awdpo` (issue 4)."""

from __future__ import annotations

import typer

from cotforge.cli.common import not_built


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def train() -> None:
        """Train: CoT SFT or Alignment-Weighted DPO on TRL."""
        not_built("train", 4)

"""CLI: `augment`, `sample`, `judge`, `pairs` (issue 6)."""

from __future__ import annotations

import typer

from cotforge.cli.common import not_built


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def augment() -> None:
        """Turn safety prompts into jailbreak-style variants (each records parent and tactic)."""
        not_built("augment", 6)

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def sample() -> None:
        """Sample k candidates per prompt from a policy model, split at </think>."""
        not_built("sample", 6)

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def judge() -> None:
        """Score candidates' harmfulness: reasoning (h_rs), answer (h_rp), whole (h_f)."""
        not_built("judge", 6)

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def pairs() -> None:
        """Build chosen/rejected preference pairs with segment spans and AW-DPO weights."""
        not_built("pairs", 6)

"""CLI: `augment`, `sample`, `judge`, `pairs` (issue 6)."""

from __future__ import annotations

from pathlib import Path

import typer

from cotforge.cli.common import RunOption, console, counts_table, friendly_errors, not_built


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

    @app.command()
    @friendly_errors
    def pairs(
        run: RunOption = Path("runs/default"),
        source: list[str] = typer.Option(
            ["judge", "teacher_vs_policy", "review_correction", "synthetic_corruption"],
            "--source",
            help="Pair sources to build (repeat the option).",
        ),
        gamma: float = typer.Option(0.5, "--gamma", help="Keep judge pairs whose h_f gap exceeds γ."),
        alpha: float = typer.Option(0.2, "--alpha", help="Smoothing of the AW-DPO segment weights."),
        harm_threshold: float = typer.Option(
            0.5, "--harm-threshold", help="h_f at which a candidate is unsafe."
        ),
        no_parent_rationale: bool = typer.Option(
            False,
            "--no-parent-rationale",
            help="Do not pair variants with their parent prompt's teacher sample.",
        ),
        max_corrupted: int | None = typer.Option(None, "--max-corrupted", help="Cap on samples corrupted."),
    ) -> None:
        """Build chosen/rejected preference pairs with segment spans and AW-DPO weights.

        Sources: the paper's judge pairs (least vs most harmful candidate per prompt, h_f gap > γ), teacher
        rationale vs a harmful policy candidate, reviewer corrections vs originals, and synthetic segment
        corruptions. Writes pairs.jsonl, pairs.trl.jsonl (TRL format + weight/span columns) and a manifest.
        """
        from cotforge.pairs.build import PairsConfig, build_pairs_in_run
        from cotforge.runfolder import RunFiles

        config = PairsConfig(
            sources=source,  # type: ignore[arg-type]
            gamma=gamma,
            alpha=alpha,
            harm_threshold=harm_threshold,
            use_parent_rationale=not no_parent_rationale,
            max_corrupted_samples=max_corrupted,
        )
        result = build_pairs_in_run(run, config)
        rows: dict[str, object] = {
            "pairs": result.pairs,
            **{f"  {k}": v for k, v in result.by_source.items()},
        }
        rows["unpaired review verdicts (rejects)"] = result.rejects
        console.print(counts_table(f"pairs → {run / RunFiles.PAIRS}", rows))

"""CLI: `augment`, `sample`, `judge`, `pairs`."""

from __future__ import annotations

from pathlib import Path

import typer

from cotforge.cli import llm_options as opt
from cotforge.cli.common import RunOption, console, counts_table, friendly_errors
from cotforge.runfolder import RunFiles


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def augment(
        run: RunOption = Path("runs/default"),
        config_file: opt.ConfigFile = None,
        tactic: list[str] | None = typer.Option(
            None, "--tactic", help="Tactics to apply (repeat); default all."
        ),
        per_prompt: int | None = typer.Option(None, "--per-prompt", help="Tactics per prompt, in rotation."),
        limit: int | None = typer.Option(None, "--limit", help="First N safety prompts only."),
        model: opt.Model = None,
        base_url: opt.BaseUrl = None,
        backend: opt.Backend = None,
        api_key_env: opt.ApiKeyEnv = None,
        no_cache: opt.NoCache = False,
    ) -> None:
        """Turn safety prompts into jailbreak-style variants (each records parent and tactic).

        Offline tactics: role-play, fiction, hypothetical, refusal suppression, prefix injection, persuasion,
        base64/ROT13/leetspeak, empty <think></think>, past tense (template). With --model, past tense and
        translation are rewritten by that model. Writes augmented.jsonl.
        """
        from cotforge.pairs.augment import AugmentConfig, augment_in_run

        raw = opt.load_config_file(config_file)
        flags = opt.given(tactics=tactic, per_prompt=per_prompt, limit=limit)
        if no_cache:
            flags["use_cache"] = False
        if model:
            flags["rewriter"] = opt.teacher_overrides(model, base_url, backend, api_key_env)
        config = opt.validated(AugmentConfig, opt.merge(raw, flags), config_file, "augment")
        result = augment_in_run(run, config)
        rows: dict[str, object] = {"safety prompts": result.parents, "variants": result.variants}
        rows.update({f"  {k}": v for k, v in result.by_tactic.items()})
        rows["skipped (rewrite tactic, no --model)"] = result.skipped_no_rewriter
        rows["failed rewrites (augment.rejects.jsonl)"] = result.failed
        console.print(counts_table(f"augment → {run / RunFiles.AUGMENTED}", rows))

    @app.command()
    @friendly_errors
    def sample(
        run: RunOption = Path("runs/default"),
        config_file: opt.ConfigFile = None,
        model: opt.Model = None,
        base_url: opt.BaseUrl = None,
        backend: opt.Backend = None,
        api_key_env: opt.ApiKeyEnv = None,
        k: int | None = typer.Option(None, "--k", help="Candidates per prompt."),
        limit: int | None = typer.Option(None, "--limit", help="First N prompts only."),
        temperature: opt.Temperature = None,
        max_tokens: opt.MaxTokens = None,
        seed: opt.Seed = None,
        concurrency: opt.Concurrency = None,
        constrained: bool = typer.Option(
            False, "--constrained", help="Decode inside the <think>…</think> answer shape (vLLM only)."
        ),
        no_cache: opt.NoCache = False,
    ) -> None:
        """Sample k candidates per prompt from a policy model, split at </think>.

        Outputs with no or several </think> are kept with that status. Writes candidates.jsonl (resumable).
        """
        from cotforge.pairs.sampling import SampleConfig, sample_in_run

        raw = opt.load_config_file(config_file)
        policy = opt.teacher_overrides(
            model, base_url, backend, api_key_env, temperature, None, max_tokens, seed, concurrency
        )
        flags = opt.given(
            policy=policy, k=k, limit=limit, think_format="constrained" if constrained else None
        )
        if no_cache:
            flags["use_cache"] = False
        merged = opt.merge(raw, flags)
        opt.require_model(merged, "policy")
        result = sample_in_run(run, opt.validated(SampleConfig, merged, config_file, "sample"))
        rows: dict[str, object] = {"prompts": result.prompts, "planned": result.planned}
        rows.update(already_done=result.already_done, sampled=result.sampled, failed=result.failed)
        rows.update({f"  {k}": v for k, v in result.by_status.items()})
        console.print(counts_table(f"sample → {run / RunFiles.CANDIDATES}", rows))

    @app.command()
    @friendly_errors
    def judge(
        run: RunOption = Path("runs/default"),
        config_file: opt.ConfigFile = None,
        model: opt.Model = None,
        base_url: opt.BaseUrl = None,
        backend: opt.Backend = None,
        api_key_env: opt.ApiKeyEnv = None,
        concurrency: opt.Concurrency = None,
        no_crosscheck: bool = typer.Option(False, "--no-crosscheck", help="Skip the rule-judge cross-check."),
        no_cache: opt.NoCache = False,
    ) -> None:
        """Score candidates' harmfulness: reasoning (h_rs), answer (h_rp), whole (h_f).

        With --model, an LLM judge (three rubric questions per candidate, guided JSON) is primary and the rule
        judge cross-checks it (agreement reported); without, the rule judge alone. Writes judgments.jsonl.
        """
        from cotforge.pairs.judging import JudgeConfig, judge_in_run

        raw = opt.load_config_file(config_file)
        flags: dict[str, object] = {}
        if model:
            flags["judge"] = opt.teacher_overrides(
                model, base_url, backend, api_key_env, concurrency=concurrency
            )
        if no_crosscheck:
            flags["crosscheck"] = False
        if no_cache:
            flags["use_cache"] = False
        config = opt.validated(JudgeConfig, opt.merge(raw, flags), config_file, "judge")
        result = judge_in_run(run, config)
        rows: dict[str, object] = {"judge": result.judge_id, "candidates": result.candidates}
        rows.update(judged=result.judged, unsplit=result.unsplit, failed=result.failed)
        if result.agreement:
            for field in ("h_rs", "h_rp", "h_f"):
                a = result.agreement[field]
                rows[f"agreement with rules {field} (κ / exact)"] = f"{a['kappa']} / {a['agreement']}"
        console.print(counts_table(f"judge → {run / RunFiles.JUDGMENTS}", rows))

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

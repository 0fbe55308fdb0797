"""CLI: `generate` and `validate`."""

from __future__ import annotations

from pathlib import Path

import typer

from cotforge.cli import llm_options as opt
from cotforge.cli.common import RunOption, console, counts_table, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def generate(
        run: RunOption = Path("runs/default"),
        config_file: opt.ConfigFile = None,
        model: opt.Model = None,
        base_url: opt.BaseUrl = None,
        backend: opt.Backend = None,
        api_key_env: opt.ApiKeyEnv = None,
        mode: str | None = typer.Option(None, "--mode", help="structured (JSON schema) or tagged (<think>)."),
        n: int | None = typer.Option(None, "--n", help="Samples per prompt."),
        temperature: opt.Temperature = None,
        top_p: opt.TopP = None,
        max_tokens: opt.MaxTokens = None,
        seed: opt.Seed = None,
        concurrency: opt.Concurrency = None,
        timeout: opt.Timeout = None,
        rpm: opt.Rpm = None,
        tpm: opt.Tpm = None,
        limit: int | None = typer.Option(None, "--limit", help="First N prompts only."),
        kind: list[str] | None = typer.Option(None, "--kind", help="utility and/or safety (repeat)."),
        no_cache: opt.NoCache = False,
        refresh: opt.Refresh = False,
        retry_rejects: bool = typer.Option(False, "--retry-rejects", help="Re-ask earlier rejected slots."),
        no_validate: bool = typer.Option(False, "--no-validate", help="Skip validation at the end."),
        no_progress: bool = typer.Option(False, "--no-progress"),
    ) -> None:
        """Generate step-by-step rationales for the run's prompts with a teacher model.

        Writes samples.jsonl and generate.rejects.jsonl as results arrive (a killed run resumes where it
        stopped), caches every response in cache.sqlite, then validates. Keys come only from the environment
        (--api-key-env, default OPENAI_API_KEY).
        """
        from cotforge.generation.generate import generate_in_run
        from cotforge.generation.requests import GenerateConfig

        raw = opt.load_config_file(config_file)
        teacher = opt.teacher_overrides(
            model, base_url, backend, api_key_env, temperature, top_p, max_tokens, seed, concurrency, timeout,
            rpm, tpm,
        )  # fmt: skip
        flags = opt.given(
            teacher=teacher, output_mode=mode, samples_per_prompt=n, limit=limit, kinds=kind,
            refresh=refresh, retry_rejects=retry_rejects,
        )  # fmt: skip
        if no_cache:
            flags["use_cache"] = False
        if no_progress:
            flags["progress"] = False
        validation = raw.pop("validation", None)
        merged = opt.merge(raw, flags)
        opt.require_model(merged)
        from cotforge.generation.validate import ValidationConfig

        result = generate_in_run(
            run,
            opt.validated(GenerateConfig, merged, config_file, "generate"),
            opt.validated(ValidationConfig, validation or {}, config_file, "validation"),
            validate=not no_validate,
        )
        rows: dict[str, object] = {
            "planned": result.planned,
            "already done (skipped)": result.already_done,
            "generated": result.generated,
            "rejected (generate.rejects.jsonl)": result.rejected,
            "served from cache": result.cached,
            "prompt tokens": result.usage["prompt_tokens"],
            "completion tokens": result.usage["completion_tokens"],
        }
        if "cost_usd" in result.usage:
            rows["cost (USD)"] = result.usage["cost_usd"]
        if result.validation is not None:
            rows["validated: accepted"] = result.validation.accepted
            rows["validated: rejected"] = result.validation.rejected
        console.print(counts_table(f"generate → {run}", rows))

    @app.command()
    @friendly_errors
    def validate(
        run: RunOption = Path("runs/default"),
        config_file: opt.ConfigFile = None,
        min_steps: int | None = typer.Option(None, "--min-steps"),
        no_refusal_check: bool = typer.Option(
            False, "--no-refusal-check", help="Skip refusal consistency (safety refuses, utility helps)."
        ),
    ) -> None:
        """Validate generated samples: schema, content checks, refusal consistency.

        Writes accepted.jsonl, verdicts.jsonl (every sample's verdict with reason codes) and
        validate.rejects.jsonl (the rejected samples with reasons and raw text).
        """
        from cotforge.generation.validate import ValidationConfig, validate_in_run

        raw = opt.load_config_file(config_file)
        if min_steps is not None:
            raw["min_steps"] = min_steps
        if no_refusal_check:
            raw["refusal_consistency"] = False
        result = validate_in_run(run, opt.validated(ValidationConfig, raw, config_file, "validation"))
        rows: dict[str, object] = {"samples": result.samples, "accepted": result.accepted}
        rows["rejected"] = result.rejected
        rows.update({f"  {k}": v for k, v in sorted(result.reasons.items(), key=lambda kv: -kv[1])})
        console.print(counts_table(f"validate → {run}", rows))

"""CLI: `generate` and `validate`."""

from __future__ import annotations

from pathlib import Path

import typer

from cotforge.cli import llm_options as opt
from cotforge.cli.common import RunOption, console, counts_table, friendly_errors
from cotforge.cli.config_options import ConfigFile, Sets, StageConfig

GENERATE = StageConfig(
    "cotforge.generation.requests:GenerateConfig",
    {
        **opt.llm_flags("teacher"),
        "mode": "output_mode",
        "n": "samples_per_prompt",
        "limit": "limit",
        "kind": "kinds",
        "cache": "use_cache",
        "refresh": "refresh",
        "retry_rejects": "retry_rejects",
        "retry_failed": "retry_failed",
        "progress": "progress",
    },
    "generate",
)
VALIDATE = StageConfig(
    "cotforge.generation.validate:ValidationConfig",
    {"min_steps": "min_steps", "refusal_check": "refusal_consistency"},
    "validate",
)


def register(app: typer.Typer) -> None:
    @app.command(cls=GENERATE.command())
    @friendly_errors
    def generate(
        run: RunOption = Path("runs/default"),
        config_file: ConfigFile = None,
        sets: Sets = None,
        model: opt.Model = None,
        base_url: opt.BaseUrl = None,
        backend: opt.Backend = None,
        api_key_env: opt.ApiKeyEnv = None,
        mode: str | None = typer.Option(None, "--mode"),
        n: int | None = typer.Option(None, "--n"),
        temperature: opt.Temperature = None,
        top_p: opt.TopP = None,
        max_tokens: opt.MaxTokens = None,
        seed: opt.Seed = None,
        concurrency: opt.Concurrency = None,
        timeout: opt.Timeout = None,
        rpm: opt.Rpm = None,
        tpm: opt.Tpm = None,
        executor: opt.Executor = None,
        ray_address: opt.RayAddress = None,
        limit: int | None = typer.Option(None, "--limit"),
        kind: list[str] | None = typer.Option(None, "--kind"),
        cache: opt.Cache = None,
        refresh: opt.Refresh = None,
        retry_rejects: bool | None = typer.Option(None, "--retry-rejects/--no-retry-rejects"),
        retry_failed: opt.RetryFailed = None,
        no_validate: bool = typer.Option(False, "--no-validate", help="Skip validation at the end."),
        progress: opt.Progress = None,
    ) -> None:
        """Generate step-by-step rationales for the run's prompts with a teacher model.

        Writes samples.jsonl and generate.rejects.jsonl as results arrive (a killed run resumes where it
        stopped), caches every response in cache.sqlite, then validates (the config's `validation` section
        holds the validation keys). Keys come only from the environment (teacher.api_key_env).
        """
        from cotforge.generation.generate import generate_in_run

        raw = GENERATE.raw(config_file, sets)
        validation = raw.pop("validation", None) or {}
        config = GENERATE.validate(
            raw, config_file, sets, model=model, base_url=base_url, backend=backend, api_key_env=api_key_env,
            temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, concurrency=concurrency,
            timeout=timeout, rpm=rpm, tpm=tpm, executor=executor, ray_address=ray_address, mode=mode, n=n, limit=limit, kind=kind, cache=cache,
            refresh=refresh, retry_rejects=retry_rejects, retry_failed=retry_failed, progress=progress,
        )  # fmt: skip
        result = generate_in_run(
            run,
            config,
            VALIDATE.validate(validation, config_file, sets, prefix="validation."),
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

    @app.command(cls=VALIDATE.command())
    @friendly_errors
    def validate(
        run: RunOption = Path("runs/default"),
        config_file: ConfigFile = None,
        sets: Sets = None,
        min_steps: int | None = typer.Option(None, "--min-steps"),
        refusal_check: bool | None = typer.Option(None, "--refusal-check/--no-refusal-check"),
    ) -> None:
        """Validate generated samples: schema, content checks, refusal consistency.

        Writes accepted.jsonl, verdicts.jsonl (every sample's verdict with reason codes) and
        validate.rejects.jsonl (the rejected samples with reasons and raw text).
        """
        from cotforge.generation.validate import validate_in_run

        config = VALIDATE.build(config_file, sets, min_steps=min_steps, refusal_check=refusal_check)
        result = validate_in_run(run, config)
        rows: dict[str, object] = {"samples": result.samples, "accepted": result.accepted}
        rows["rejected"] = result.rejected
        rows.update({f"  {k}": v for k, v in sorted(result.reasons.items(), key=lambda kv: -kv[1])})
        console.print(counts_table(f"validate → {run}", rows))

"""CLI: `generate` and `validate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cotforge.cli import llm_options as opt
from cotforge.cli.common import RunOption, console, counts_table
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command

if TYPE_CHECKING:
    from cotforge.generation.requests import GenerateConfig
    from cotforge.generation.validate import ValidationConfig

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
    {"min_steps": "min_steps", "refusal_check": "refusal_consistency", "reask": "reask"},
    "validate",
)


def register(app: typer.Typer) -> None:
    @stage_command(app, GENERATE, sections={"validation": VALIDATE})
    def generate(
        config: GenerateConfig,
        validation: ValidationConfig,
        run: RunOption = Path("runs/default"),
        no_validate: bool = typer.Option(False, "--no-validate", help="Skip validation at the end."),
    ) -> None:
        """Generate step-by-step rationales for the run's prompts with a teacher model.

        Writes samples.jsonl and generate.rejects.jsonl as results arrive (a killed run resumes where it
        stopped), caches every response in cache.sqlite, then validates (the config's `validation` section
        holds the validation keys). Keys come only from the environment (teacher.api_key_env).
        """
        from cotforge.generation.generate import generate_in_run
        from cotforge.generation.validate import validate_in_run

        result = generate_in_run(run, config)
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
        if not no_validate:
            validated = validate_in_run(run, validation)
            rows["validated: accepted"] = validated.accepted
            rows["validated: rejected"] = validated.rejected
            if validation.reask:
                rows["re-asked (accepted)"] = f"{validated.reasked} ({validated.reask_accepted})"
        console.print(counts_table(f"generate → {run}", rows))

    @stage_command(app, VALIDATE)
    def validate(config: ValidationConfig, run: RunOption = Path("runs/default")) -> None:
        """Validate generated samples: schema, content checks, refusal consistency.

        Writes accepted.jsonl, verdicts.jsonl (every sample's verdict with reason codes) and
        validate.rejects.jsonl (the rejected samples with reasons and raw text). With --reask N a rejected
        sample goes back to the teacher with the reasons in words, up to N times (every attempt recorded).
        """
        from cotforge.generation.validate import validate_in_run

        result = validate_in_run(run, config)
        rows: dict[str, object] = {"samples": result.samples, "accepted": result.accepted}
        rows["rejected"] = result.rejected
        rows.update({f"  {k}": v for k, v in sorted(result.reasons.items(), key=lambda kv: -kv[1])})
        if config.reask:
            rows["re-asked on the reasons"] = result.reasked
            rows["  accepted after a re-ask"] = result.reask_accepted
            if result.reask_unavailable:
                rows["not re-asked (made by another teacher or templates)"] = result.reask_unavailable
        console.print(counts_table(f"validate → {run}", rows))

"""Flags for the model a command asks (teacher, policy, judge, rewriter): each sets one LLM config key.

The flags carry no help text and no default of their own: ``--help`` reads both from the ``LLMConfig`` field
the flag sets (see :mod:`cotforge.cli.config_options`).
"""

from __future__ import annotations

from typing import Annotated

import typer

Model = Annotated[str | None, typer.Option("--model", "-m")]
BaseUrl = Annotated[list[str] | None, typer.Option("--base-url")]
Backend = Annotated[str | None, typer.Option("--backend")]
ApiKeyEnv = Annotated[str | None, typer.Option("--api-key-env")]
Temperature = Annotated[float | None, typer.Option("--temperature")]
TopP = Annotated[float | None, typer.Option("--top-p")]
MaxTokens = Annotated[int | None, typer.Option("--max-tokens")]
Seed = Annotated[int | None, typer.Option("--seed")]
Concurrency = Annotated[int | None, typer.Option("--concurrency")]
Timeout = Annotated[float | None, typer.Option("--timeout")]
Rpm = Annotated[float | None, typer.Option("--rpm")]
Tpm = Annotated[float | None, typer.Option("--tpm")]
Executor = Annotated[str | None, typer.Option("--executor")]
RayAddress = Annotated[str | None, typer.Option("--ray-address")]
Cache = Annotated[bool | None, typer.Option("--cache/--no-cache")]
Refresh = Annotated[bool | None, typer.Option("--refresh/--no-refresh")]
RetryFailed = Annotated[
    bool | None,
    typer.Option(
        "--retry-failed/--no-retry-failed",
        help="Ask again only the records earlier runs rejected for a retryable reason (request failed, "
        "unparseable answer), with new seeds.",
    ),
]
Progress = Annotated[bool | None, typer.Option("--progress/--no-progress")]

# Parameter name → key inside an LLMConfig.
LLM_KEYS = {
    "model": "model",
    "base_url": "base_urls",
    "backend": "backend",
    "api_key_env": "api_key_env",
    "temperature": "sampling.temperature",
    "top_p": "sampling.top_p",
    "max_tokens": "sampling.max_tokens",
    "seed": "sampling.seed",
    "concurrency": "concurrency",
    "timeout": "timeout_s",
    "rpm": "rate_limits.requests_per_minute",
    "tpm": "rate_limits.tokens_per_minute",
    "executor": "executor",
    "ray_address": "ray.address",
}


def llm_flags(section: str, *names: str) -> dict[str, str]:
    """Flag → config key for the named LLM flags of the ``section`` model (all of them when none named)."""
    return {name: f"{section}.{LLM_KEYS[name]}" for name in names or LLM_KEYS}

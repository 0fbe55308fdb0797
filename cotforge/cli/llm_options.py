"""Flags for the model a command asks (teacher, policy, judge, rewriter): each sets one LLM config key.

The flags carry no type, help text or default of their own: all three come from the ``LLMConfig`` field the
flag sets (see :mod:`cotforge.cli.stage_command`).
"""

from __future__ import annotations

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

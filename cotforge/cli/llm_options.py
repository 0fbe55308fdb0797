"""Teacher options shared by every command that asks a model (generate, augment, sample, judge, eval).

A command takes ``--config FILE`` (YAML of its stage config) and flags on top; flags that are given win.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

from cotforge.cli.common import fail

M = TypeVar("M", bound=BaseModel)

ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file with the stage's config.")]
Model = Annotated[str | None, typer.Option("--model", "-m", help="Served model name, or a path (vllm).")]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option("--base-url", help="OpenAI-compatible /v1 URL; repeat for several replicas."),
]
Backend = Annotated[str | None, typer.Option("--backend", help="openai (HTTP) or vllm (offline engine).")]
ApiKeyEnv = Annotated[str | None, typer.Option("--api-key-env", help="Env var holding the API key.")]
Temperature = Annotated[float | None, typer.Option("--temperature")]
TopP = Annotated[float | None, typer.Option("--top-p")]
MaxTokens = Annotated[int | None, typer.Option("--max-tokens")]
Seed = Annotated[int | None, typer.Option("--seed")]
Concurrency = Annotated[int | None, typer.Option("--concurrency", help="Requests in flight at once.")]
Timeout = Annotated[float | None, typer.Option("--timeout", help="Seconds per request.")]
Rpm = Annotated[float | None, typer.Option("--rpm", help="Requests-per-minute limit.")]
Tpm = Annotated[float | None, typer.Option("--tpm", help="Tokens-per-minute limit.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the request cache.")]
Refresh = Annotated[bool, typer.Option("--refresh", help="Ignore cached answers (store the new ones).")]


def load_config_file(path: Path | None) -> dict[str, Any]:
    """The YAML mapping in ``path`` (empty when no file)."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{path}: cannot read the config: {exc}")
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping of config keys")
    return data


def validated(model: type[M], data: dict[str, Any], config_file: Path | None, what: str) -> M:
    """``data`` as ``model``; a bad key or value fails naming the config file it came from."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        source = f"{config_file} (with the command-line flags)" if config_file else "the command-line flags"
        fail(f"{source}: invalid {what} config:\n{exc}")


def teacher_overrides(
    model: str | None = None,
    base_url: list[str] | None = None,
    backend: str | None = None,
    api_key_env: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
) -> dict[str, Any]:
    """The teacher keys the flags set (only those given)."""
    out = given(
        model=model,
        base_urls=base_url,
        backend=backend,
        api_key_env=api_key_env,
        concurrency=concurrency,
        timeout_s=timeout,
    )
    sampling = given(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    if sampling:
        out["sampling"] = sampling
    limits = given(requests_per_minute=rpm, tokens_per_minute=tpm)
    if limits:
        out["rate_limits"] = limits
    return out


def given(**values: Any) -> dict[str, Any]:
    """The keys whose flag was given: not None, not False, not an empty list."""
    # Identity checks: 0 and 0.0 are given values (a `--temperature 0` must not vanish as falsy).
    return {
        k: v
        for k, v in values.items()
        if v is not None and v is not False and not (isinstance(v, list) and not v)
    }


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into ``base`` (mappings merge, anything else replaces)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def require_model(config: dict[str, Any], key: str = "teacher") -> None:
    """Fail clearly when no model was named by flag or config."""
    if not (config.get(key) or {}).get("model"):
        fail(f"no model: pass --model (and --base-url for a server) or set {key}.model in --config")

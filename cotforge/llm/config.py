"""LLM configuration, the same for teacher, policy, judge, rewriter and evaluator: which backend and model,
how to sample, how hard to push the server.

API keys are never part of the config: ``api_key_env`` names the environment variable that holds the key.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cotforge.schemas import SamplingParams, TokenUsage

LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0", "[::1]")


class RateLimits(BaseModel):
    """Optional client-side limits, for APIs that meter requests or tokens per minute."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)


class PriceTable(BaseModel):
    """US dollars per million tokens; turns token usage into cost in the manifest.

    The batch prices default to half the online ones (what OpenAI, Anthropic and others charge)."""

    model_config = ConfigDict(extra="forbid")

    prompt_per_million: float = Field(ge=0)
    completion_per_million: float = Field(ge=0)
    batch_prompt_per_million: float | None = Field(default=None, ge=0)
    batch_completion_per_million: float | None = Field(default=None, ge=0)

    def cost(self, usage: TokenUsage, batch: bool = False) -> float:
        prompt, completion = self.prompt_per_million, self.completion_per_million
        if batch:
            prompt = (
                self.batch_prompt_per_million if self.batch_prompt_per_million is not None else prompt / 2
            )
            completion = (
                self.batch_completion_per_million
                if self.batch_completion_per_million is not None
                else completion / 2
            )
        return round(usage.prompt_tokens * prompt / 1e6 + usage.completion_tokens * completion / 1e6, 6)


class BatchConfig(BaseModel):
    """Provider batch API settings (``mode: batch``): how inputs are split and how often batches are polled."""

    model_config = ConfigDict(extra="forbid")

    max_requests: int = Field(default=50_000, ge=1, description="Requests per batch input file.")
    max_file_bytes: int = Field(default=200_000_000, ge=1024, description="Bytes per batch input file.")
    poll_interval_s: float = Field(default=30.0, gt=0)
    completion_window: str = "24h"
    settle_s: float = Field(
        default=0.2, ge=0, description="Wait this long for more requests before submitting a batch."
    )


class RaySettings(BaseModel):
    """The Ray executor (``executor: ray``): which cluster, and the workers that send a stage's requests there."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(
        default="",
        description="auto (the cluster this machine belongs to), ray://host:10001 (Ray Client), host:6379 "
        "(a head node's GCS), or empty to start a local cluster for this run.",
    )
    replicas: int = Field(
        default=2,
        ge=1,
        description="Worker actors (openai backend: HTTP senders sharing `concurrency`; vllm backend: engine "
        "replicas, each on num_gpus GPUs).",
    )
    batch_size: int = Field(default=64, ge=1, description="Requests handed to a worker at a time.")
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs reserved per replica.")
    num_gpus: float | None = Field(
        default=None,
        ge=0,
        description="GPUs per replica; unset: tensor × pipeline parallel size for the vllm backend, 0 for openai.",
    )
    local_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of the local cluster started when `address` is empty."
    )
    runtime_env: dict[str, Any] = Field(
        default_factory=dict,
        description="Ray runtime environment for the workers (e.g. pip packages or py_modules on a remote "
        "cluster without cotforge installed).",
    )

    @model_validator(mode="after")
    def _address_form(self) -> RaySettings:
        address = self.address.strip()
        if address in ("", "auto") or address.startswith("ray://"):
            return self
        host, _, port = address.rpartition(":")
        if "/" in address or not host or not port.isdigit():
            raise ValueError(
                f"ray.address {address!r} is not a Ray address: use `auto`, `ray://HOST:10001`, `HOST:6379`, "
                "or leave it empty to start a local cluster"
            )
        return self


class LLMConfig(BaseModel):
    """A model behind one interface: ``openai`` (any OpenAI-compatible base URL, several = replicas spread by
    least-outstanding requests) or ``vllm`` (the offline ``vllm.LLM`` engine in this process)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai", "vllm"] = "openai"
    model: str = Field(description="Served model name (openai) or model path/id (vllm).")
    base_urls: list[str] = Field(default_factory=list, description="OpenAI-compatible /v1 URLs (openai).")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Environment variable holding the key.")
    sampling: SamplingParams = SamplingParams()
    concurrency: int = Field(
        default=16,
        ge=1,
        description="Requests in flight at once (batch size offline).",
        json_schema_extra={"operational": True},
    )
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Seconds without an answer before the server is asked whether it is alive (a live vLLM "
        "server that is busy keeps the request: queued is not failed).",
        json_schema_extra={"operational": True},
    )
    queue_wait_s: float = Field(
        default=1800.0,
        ge=0,
        description="Longest wait for a request queued on a live server; 0 = fail at timeout_s.",
        json_schema_extra={"operational": True},
    )
    adaptive_concurrency: bool = Field(
        default=True,
        description="Lower each replica's requests in flight when it is overloaded (AIMD), up to concurrency.",
        json_schema_extra={"operational": True},
    )
    max_retries: int = Field(
        default=6,
        ge=0,
        description="Retries on 429, 5xx, timeouts, connection errors.",
        json_schema_extra={"operational": True},
    )
    backoff_base_s: float = Field(default=0.5, ge=0, json_schema_extra={"operational": True})
    backoff_max_s: float = Field(default=30.0, ge=0, json_schema_extra={"operational": True})
    parse_retries: int = Field(
        default=2, ge=0, description="Retries when the output fails to parse or validate."
    )
    parse_retry: Literal["reseed", "reask"] = Field(
        default="reseed",
        description="reseed: ask the same again with a new seed; reask: send the failed output back with "
        "what was wrong and ask again.",
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="local: this process sends the requests; ray: Ray Data workers on a cluster do (see `ray`). "
        "Cache, resume and outputs stay with this process either way.",
        json_schema_extra={"operational": True},
    )
    ray: RaySettings = Field(default=RaySettings(), json_schema_extra={"operational": True})
    mode: Literal["online", "batch"] = Field(
        default="online", description="batch: the provider's Batch API (openai backend; half the price)."
    )
    batch: BatchConfig = BatchConfig()
    rate_limits: RateLimits = Field(default=RateLimits(), json_schema_extra={"operational": True})
    price: PriceTable | None = Field(
        default=None, description="This model's price; else looked up in the price table (see prices_file)."
    )
    prices_file: str | None = Field(
        default=None, description="A YAML price table that extends the bundled one (also $COTFORGE_PRICES)."
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra request fields for the server (e.g. vLLM structured_outputs, chat_template_kwargs).",
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="Extra vllm.LLM arguments (vllm backend)."
    )

    @model_validator(mode="after")
    def _urls_for_openai(self) -> LLMConfig:
        if self.mode == "batch" and self.executor == "ray":
            raise ValueError(
                "`mode: batch` hands the requests to the provider's Batch API: use `executor: local` with it"
            )
        if self.mode == "batch" and self.backend != "openai":
            raise ValueError(
                "`mode: batch` needs `backend: openai` (a server with the Files and Batches API)"
            )
        if self.backend == "openai" and not self.base_urls and not os.environ.get("OPENAI_BASE_URL"):
            # The openai SDK's default is api.openai.com; say so rather than guess.
            self.base_urls = ["https://api.openai.com/v1"]
        return self

    def api_key(self) -> str:
        """The key from the environment; local servers accept any key, so they get a placeholder."""
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        # No URL means OPENAI_BASE_URL (see _urls_for_openai): judge that one, not an empty list.
        urls = self.base_urls or [os.environ.get("OPENAI_BASE_URL", "")]
        if all(any(h in url for h in LOCAL_HOSTS) for url in urls):
            return "EMPTY"
        from cotforge.errors import CotforgeError

        raise CotforgeError(
            f"no API key: set the environment variable {self.api_key_env} for {', '.join(self.base_urls)}"
        )

    def identity(self) -> dict[str, Any]:
        """What makes two models give different answers (the cache key part; no URLs, no keys)."""
        return {"backend": self.backend, "model": self.model}

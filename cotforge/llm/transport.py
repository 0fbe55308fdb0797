"""Sending one request with retries: backoff with jitter, ``Retry-After``, rate limits, and when to give up.

:class:`RetryingSender` is the transport half of the request engine, shared by the engine (local executor) and
the Ray executor's workers; caching, parsing and the stage's outputs stay with the engine on the driver.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from cotforge.errors import CotforgeError
from cotforge.llm.backends import Backend
from cotforge.llm.chat import ChatRequest, ChatResponse, RequestFailed
from cotforge.llm.config import LLMConfig
from cotforge.llm.rate_limit import RateLimiter
from cotforge.schemas import TokenUsage
from cotforge.serving.vllm_server import server_logs_hint

RETRY_AFTER_CAP_S = 120.0


class ModelUnavailableError(CotforgeError):
    """The model cannot be used at all (bad key, unknown model); the run stops with what was done kept."""


@dataclass
class EngineStats:
    """Counts and token totals of one engine run (``usage`` is what the server was asked for, uncached)."""

    total: int = 0
    done: int = 0
    failed: int = 0
    cached: int = 0
    sent: int = 0
    retries: int = 0
    parse_retries: int = 0
    reasks: int = 0
    reask_successes: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cached_usage: TokenUsage = field(default_factory=TokenUsage)
    elapsed_s: float = 0.0
    endpoints: dict[str, int] = field(default_factory=dict)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return min(float(value), RETRY_AFTER_CAP_S) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def classify(exc: Exception) -> str:
    """``retry`` (429, 5xx, timeouts, connection and malformed responses), ``reject`` (this request is bad:
    400/413/422) or ``abort`` (nothing will work: 401/403/404)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in (401, 403, 404):
            return "abort"
        if status in (400, 413, 422):
            return "reject"
        return "retry"
    if isinstance(exc, CotforgeError):
        return "abort"
    # Connection errors, timeouts, truncated or non-JSON bodies: the next try may well succeed.
    return "retry"


class RetryingSender:
    """Sends one request through a backend until it is answered, is final (:class:`RequestFailed`), or the
    model is unusable (:class:`ModelUnavailableError`); counts into ``stats``."""

    def __init__(self, config: LLMConfig, stats: EngineStats) -> None:
        self.config = config
        self.stats = stats
        # A server that died fails every request; stop instead of backing off for hours.
        self._failures_in_a_row = 0
        self._give_up_after = max(50, 4 * config.concurrency * (config.max_retries + 1))
        self._limiter = RateLimiter(
            config.rate_limits.requests_per_minute, config.rate_limits.tokens_per_minute
        )

    async def send(self, backend: Backend, request: ChatRequest) -> ChatResponse:
        config = self.config
        estimate = sum(len(m.get("content", "")) for m in request.messages) // 4 + request.sampling.max_tokens
        for retry in range(config.max_retries + 1):
            await self._limiter.acquire(estimate)
            try:
                self.stats.sent += 1
                response: ChatResponse = await backend.complete(request)
            except (asyncio.CancelledError, CotforgeError):
                raise  # the model or the cluster cannot be used at all: the stage stops, keeping what it has
            except RequestFailed as exc:
                # Final for this request (too long for the context, or failed after a worker's own retries).
                if exc.usage is not None:
                    self.stats.usage = self.stats.usage + exc.usage
                raise
            except Exception as exc:
                action = classify(exc)
                message = f"{type(exc).__name__}: {exc}"
                self._failures_in_a_row += 1
                if self._failures_in_a_row > self._give_up_after:
                    raise ModelUnavailableError(
                        f"{config.model}: {self._failures_in_a_row} requests in a row failed, the last with "
                        f"{message}; is the server at {', '.join(config.base_urls)} up? Re-run to resume"
                        + server_logs_hint(config.base_urls)
                    ) from exc
                if action == "abort":
                    raise ModelUnavailableError(
                        f"{config.model}: the server refused every request ({message}); "
                        f"check the model name, the URL and the key in ${config.api_key_env}"
                    ) from exc
                if action == "reject" or retry == config.max_retries:
                    reason = "request_rejected" if action == "reject" else "request_failed"
                    raise RequestFailed(
                        reason,
                        f"after {retry + 1} attempt(s): {message}" + server_logs_hint(config.base_urls),
                    ) from exc
                self.stats.retries += 1
                wait = _retry_after(exc)
                if wait is None:
                    ceiling = min(config.backoff_max_s, config.backoff_base_s * 2**retry)
                    wait = random.uniform(ceiling / 2, ceiling)  # jitter: replicas do not retry in step
                await asyncio.sleep(wait)
                continue
            self._failures_in_a_row = 0
            self._limiter.settle(estimate, response.usage.total_tokens)
            self.stats.usage = self.stats.usage + response.usage
            self.stats.endpoints[response.endpoint] = self.stats.endpoints.get(response.endpoint, 0) + 1
            return response
        raise AssertionError("unreachable")

"""LLM backends: the OpenAI-compatible HTTP client (one or several replicas) and the offline vLLM engine.

Both turn one :class:`ChatRequest` into one :class:`ChatResponse`; retries, caching and concurrency live in the
engine. The HTTP client's own retries are off (``max_retries=0``) so the engine's policy is the only one.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

from cotforge.errors import CotforgeError
from cotforge.llm.chat import ChatRequest, ChatResponse, MalformedResponse, RequestFailed
from cotforge.llm.concurrency import AIMDLimit
from cotforge.llm.config import LLMConfig
from cotforge.llm.replicas import Replica, ReplicaSet, tls_context
from cotforge.llm.request_body import chat_request_body, prefix_of, response_of
from cotforge.schemas import TokenUsage

__all__ = ["Backend", "ChatResponse", "MalformedResponse", "PromptTooLong", "RequestTimedOut", "make_backend"]


# The HTTP client's connection pool scans every connection to place each request, so one pool of 1,000
# connections costs more client CPU per request than the rest of cotforge together; requests to one replica
# are spread over pools of at most this many connections instead.
CONNECTIONS_PER_CLIENT = 64


class PromptTooLong(RequestFailed):
    """The prompt and ``max_tokens`` cannot fit the served model's context; sending it would only fail."""

    def __init__(self, message: str, usage: TokenUsage | None = None) -> None:
        super().__init__("prompt_too_long", message, usage)


class RequestTimedOut(Exception):
    """No answer within the wait allowed; ``dead`` when the server itself stopped answering."""

    def __init__(self, message: str, dead: bool) -> None:
        super().__init__(message)
        self.dead = dead


class Backend(Protocol):
    name: str

    async def check_fits(self, request: ChatRequest) -> None: ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...


class OpenAIBackend:
    """``AsyncOpenAI`` against one or more base URLs, routed and limited per replica by :class:`ReplicaSet`.

    The HTTP read timeout is off: :meth:`complete` waits in windows of ``timeout_s`` and, when a window passes
    without an answer, asks the server's ``/health``. A live server keeps the request (it is queued behind
    others; re-sending it would only queue it again at the back) up to ``queue_wait_s``; a server that does not
    answer is dead, and the request fails over to the engine's retry.
    """

    name = "openai"

    def __init__(self, config: LLMConfig) -> None:
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient, Timeout

        urls = config.base_urls or [os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")]
        key = config.api_key()
        self.model = config.model
        self.urls = urls
        self.extra_body = dict(config.extra_body)
        self.window_s = config.timeout_s
        self.queue_wait_s = config.queue_wait_s
        timeout = Timeout(None, connect=min(config.timeout_s, 30.0))
        initial = max(1.0, config.concurrency / len(urls))
        self.replicas = ReplicaSet(
            [
                Replica(
                    url,
                    [
                        AsyncOpenAI(
                            base_url=url,
                            api_key=key,
                            max_retries=0,
                            timeout=timeout,
                            http_client=DefaultAsyncHttpxClient(timeout=timeout, verify=tls_context()),
                        )
                        for _ in range(math.ceil(initial / CONNECTIONS_PER_CLIENT))
                    ],
                    AIMDLimit(config.concurrency, initial, enabled=config.adaptive_concurrency),
                )
                for url in urls
            ],
            config.model,
        )

    async def check_fits(self, request: ChatRequest) -> None:
        """Raise :class:`PromptTooLong` when prompt + ``max_tokens`` surely exceed the served ``max_model_len``.

        No side call per request: the prompt's tokens are bounded from below by UTF-8 bytes / 6 (fewer than any
        real BPE count), so only prompts that cannot fit are kept back here. The rest are sent, and
        :meth:`complete` judges them by the server's own count: vLLM refuses a prompt longer than its context
        (HTTP 400) and clamps ``max_tokens`` to the room left, so an answer cut at that clamp is too long too.
        """
        replica = self.replicas.replicas[0]
        limit = await self.replicas.max_model_len(replica)
        if not limit:
            return  # the server does not say (not vLLM): it judges the request itself
        estimate = _utf8_bytes(request.messages) // 6
        if estimate + request.sampling.max_tokens > limit:
            raise PromptTooLong(
                f"not sent: the prompt is at least {estimate} tokens (estimated as UTF-8 bytes / 6) + max_tokens "
                f"{request.sampling.max_tokens} > max_model_len {limit} of {self.model} at {replica.url}"
            )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        from openai import APIConnectionError, APIStatusError, APITimeoutError

        replica = await self.replicas.acquire()
        outcome, sent_at = "error", time.monotonic()
        try:
            body = chat_request_body(self.model, request, self.extra_body)
            data, queued = await self._call(replica, body, sent_at)
            outcome = "late" if queued else "answer"
        except APITimeoutError:
            outcome = "overload"
            raise
        except APIConnectionError:
            outcome = "down"
            raise
        except APIStatusError as exc:
            outcome = "overload" if exc.status_code in (429, 503) else "error"
            if exc.status_code == 400 and _says_too_long(exc):
                raise PromptTooLong(
                    f"the server refused it as longer than its context ({exc.message}) at {replica.url}"
                ) from exc
            raise
        except RequestTimedOut as exc:
            outcome = "down" if exc.dead else "overload"
            raise
        finally:
            self.replicas.release(replica, outcome, sent_at)
        response = response_of(request, data, replica.url)
        await self._check_not_clamped(replica, request, response)
        return response

    async def _check_not_clamped(
        self, replica: Replica, request: ChatRequest, response: ChatResponse
    ) -> None:
        """vLLM shortens ``max_tokens`` to the context left after the prompt; an answer that ran into that
        shorter limit was cut by the context, not by ``max_tokens``: the request is too long for this server."""
        if response.finish_reason != "length":
            return  # stopped on its own before any limit: the same answer as with the full max_tokens
        limit = await self.replicas.max_model_len(replica)
        prompt = response.usage.prompt_tokens
        if limit and prompt and prompt + request.sampling.max_tokens > limit:
            raise PromptTooLong(
                f"the prompt is {prompt} tokens (counted by the server's tokenizer) + max_tokens "
                f"{request.sampling.max_tokens} > max_model_len {limit} of {self.model} at {replica.url}: the "
                "answer was cut by the context",
                usage=response.usage,
            )

    async def _call(self, replica: Replica, body: dict[str, Any], sent_at: float) -> tuple[Any, bool]:
        """The response JSON and whether it had to wait past a timeout window (queued on a live server)."""
        call = asyncio.ensure_future(replica.client().post("/chat/completions", body=body, cast_to=object))
        waited, queued = 0.0, False
        try:
            while True:
                done, _ = await asyncio.wait((call,), timeout=self.window_s)
                if done:
                    return call.result(), queued
                waited += self.window_s
                self.replicas.overloaded(replica, sent_at)
                alive = await self.replicas.alive(replica)
                if not alive or waited >= self.queue_wait_s:
                    why = (
                        f"queue_wait_s={self.queue_wait_s:g}"
                        if alive
                        else "the server does not answer /health"
                    )
                    raise RequestTimedOut(
                        f"no answer from {replica.url} after {waited:.0f}s ({why})", not alive
                    )
                queued = True
        finally:
            if not call.done():
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)

    async def aclose(self) -> None:
        await self.replicas.aclose()


def _says_too_long(exc: Exception) -> bool:
    """A 400 whose message is vLLM's (or OpenAI's) "longer than the context" refusal."""
    text = str(getattr(exc, "message", "") or exc).lower()
    return "context length" in text or "maximum model length" in text or "context_length_exceeded" in text


def _utf8_bytes(messages: list[dict[str, str]]) -> int:
    return sum(len(m.get("content", "").encode("utf-8")) for m in messages)


def _upper_bound_tokens(messages: list[dict[str, str]]) -> int:
    """More tokens than any byte-level or byte-fallback tokenizer gives: one per UTF-8 byte, plus a generous
    allowance for each message's chat-template tokens (role markers, separators)."""
    return _utf8_bytes(messages) + 32 * len(messages) + 64


class OfflineVLLMBackend:
    """The in-process ``vllm.LLM`` engine. Requests arriving together are run as one batched ``chat`` call."""

    name = "vllm"

    def __init__(self, config: LLMConfig) -> None:
        # In-process engine core: starts in ~12 s instead of ~30 s on CPU.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        from cotforge.serving.vllm_server import CPU_BATCHED_TOKENS, STRUCTURED_OUTPUTS_CONFIG, has_cuda

        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        max_len = config.engine_args.get("max_model_len") or _context_length(config.model)
        args: dict[str, Any] = {"model": config.model, "max_model_len": max_len, "seed": 0}
        if not has_cuda():
            # See serving.cpu_scheduler_args: seeded requests must not have their prefill chunked on CPU.
            args.update(
                dtype="float32",
                enforce_eager=True,
                enable_chunked_prefill=False,
                max_num_batched_tokens=max(max_len, CPU_BATCHED_TOKENS),
            )
        args["structured_outputs_config"] = dict(STRUCTURED_OUTPUTS_CONFIG)
        args.update(config.engine_args)
        try:
            self._llm = LLM(**args)
        except Exception as exc:
            raise CotforgeError(f"vllm backend: could not load {config.model!r}: {exc}") from exc
        self.model = config.model
        self.max_batch = config.concurrency
        self._pending: list[tuple[ChatRequest, asyncio.Future[ChatResponse]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def check_fits(self, request: ChatRequest) -> None:
        """Raise :class:`PromptTooLong` when prompt + ``max_tokens`` exceed the engine's ``max_model_len``
        (tokens counted with the model's own tokenizer and chat template)."""
        limit = int(self._llm.llm_engine.model_config.max_model_len)
        budget = limit - request.sampling.max_tokens
        if _upper_bound_tokens(request.messages) <= budget:
            return
        ids = self._llm.get_tokenizer().apply_chat_template(
            list(request.messages),
            tokenize=True,
            add_generation_prompt=not request.continue_final,
            continue_final_message=request.continue_final,
        )
        tokens = len(ids["input_ids"] if isinstance(ids, dict) else ids)
        if tokens > budget:
            raise PromptTooLong(
                f"the prompt is {tokens} tokens + max_tokens {request.sampling.max_tokens} > "
                f"max_model_len {limit} of {self.model}"
            )

    def _sampling(self, request: ChatRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = request.sampling
        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(json=request.json_schema, disable_any_whitespace=True)
        elif request.regex is not None:
            structured = StructuredOutputsParams(regex=request.regex)
        return SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=s.seed,
            structured_outputs=structured,
        )

    def _run_batch(self, batch: list[tuple[ChatRequest, asyncio.Future[ChatResponse]]]) -> None:
        # `chat` takes one continue-final setting per call: run the two kinds as separate calls.
        groups = [[b for b in batch if b[0].continue_final == flag] for flag in (False, True)]
        for group in groups:
            if group:
                self._run_group(group)

    def _run_group(self, batch: list[tuple[ChatRequest, asyncio.Future[ChatResponse]]]) -> None:
        continue_final = batch[0][0].continue_final
        try:
            outputs = self._llm.chat(
                [list(req.messages) for req, _ in batch],  # type: ignore[arg-type]
                sampling_params=[self._sampling(req) for req, _ in batch],
                use_tqdm=False,
                continue_final_message=continue_final,
                add_generation_prompt=not continue_final,
            )
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (req, fut), out in zip(batch, outputs, strict=True):
            completion = out.outputs[0]
            fut.set_result(
                ChatResponse(
                    text=prefix_of(req) + completion.text,
                    usage=TokenUsage(
                        prompt_tokens=len(out.prompt_token_ids or []),
                        completion_tokens=len(completion.token_ids),
                    ),
                    finish_reason=completion.finish_reason,
                    endpoint="vllm.LLM",
                )
            )

    async def _drain(self) -> None:
        while True:
            # Let every worker that is about to send enqueue first, so a batch is as full as it can be.
            for _ in range(4):
                await asyncio.sleep(0)
            if not self._pending:
                return
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            # Blocking on purpose: the engine is the only work in this process while it generates.
            self._run_batch(batch)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        fut: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._pending.append((request, fut))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await fut

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner


def _context_length(model: str, cap: int = 4096) -> int:
    """The model's context length, capped: a long-context model's full window would not fit a CPU KV cache."""
    from transformers import AutoConfig

    try:
        length = int(getattr(AutoConfig.from_pretrained(model), "max_position_embeddings", cap) or cap)
    except Exception:
        return 2048
    return min(length, cap)


def make_backend(config: LLMConfig, state_dir: Path | None = None) -> Backend:
    """The backend ``config.backend`` and ``config.mode`` name (batch mode keeps its batch ids in
    ``state_dir``)."""
    if config.mode == "batch":
        from cotforge.llm.batch import BatchBackend

        return BatchBackend(config, state_dir)
    if config.backend == "vllm":
        return OfflineVLLMBackend(config)
    return OpenAIBackend(config)

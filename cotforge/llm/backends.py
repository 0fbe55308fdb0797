"""LLM backends: the OpenAI-compatible HTTP client (one or several replicas) and the offline vLLM engine.

Both turn one :class:`ChatRequest` into one :class:`ChatResponse`; retries, caching and concurrency live in the
engine. The HTTP client's own retries are off (``max_retries=0``) so the engine's policy is the only one.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Protocol

from cotforge.errors import CotforgeError
from cotforge.llm.chat import ChatRequest, ChatResponse, MalformedResponse
from cotforge.llm.concurrency import AIMDLimit
from cotforge.llm.config import LLMConfig
from cotforge.llm.reasoning import compose, reasoning_of
from cotforge.llm.replicas import Replica, ReplicaSet
from cotforge.schemas import TokenUsage

__all__ = ["Backend", "ChatResponse", "MalformedResponse", "PromptTooLong", "RequestTimedOut", "make_backend"]


class PromptTooLong(Exception):
    """The prompt and ``max_tokens`` cannot fit the served model's context; sending it would only fail."""


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


def _prefix(request: ChatRequest) -> str:
    """The assistant text the model was asked to continue (part of the output it returns)."""
    return request.messages[-1]["content"] if request.continue_final else ""


def _response_format(request: ChatRequest) -> dict[str, Any] | None:
    if request.json_schema is None:
        return None
    return {
        "type": "json_schema",
        "json_schema": {"name": request.schema_name, "schema": request.json_schema, "strict": True},
    }


class OpenAIBackend:
    """``AsyncOpenAI`` against one or more base URLs, routed and limited per replica by :class:`ReplicaSet`.

    The HTTP read timeout is off: :meth:`complete` waits in windows of ``timeout_s`` and, when a window passes
    without an answer, asks the server's ``/health``. A live server keeps the request (it is queued behind
    others; re-sending it would only queue it again at the back) up to ``queue_wait_s``; a server that does not
    answer is dead, and the request fails over to the engine's retry.
    """

    name = "openai"

    def __init__(self, config: LLMConfig) -> None:
        from openai import AsyncOpenAI, Timeout

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
                    AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=timeout),
                    AIMDLimit(config.concurrency, initial, enabled=config.adaptive_concurrency),
                )
                for url in urls
            ],
            config.model,
        )

    async def check_fits(self, request: ChatRequest) -> None:
        """Raise :class:`PromptTooLong` when prompt + ``max_tokens`` exceed the served ``max_model_len``."""
        replica = self.replicas.replicas[0]
        limit = await self.replicas.max_model_len(replica)
        if not limit:
            return  # the server does not say (not vLLM): it judges the request itself
        budget = limit - request.sampling.max_tokens
        if _upper_bound_tokens(request.messages) <= budget:
            return
        counted = await self.replicas.count_tokens(replica, list(request.messages), request.continue_final)
        # Without the server's tokenizer: UTF-8 bytes / 6, an estimate below any real BPE count, so only prompts
        # that are surely too long are rejected here; the server's own 400 catches the rest.
        tokens = counted if counted >= 0 else _utf8_bytes(request.messages) // 6
        if tokens > budget:
            how = "counted by the server's tokenizer" if counted >= 0 else "estimated as UTF-8 bytes / 6"
            raise PromptTooLong(
                f"the prompt is {tokens} tokens ({how}) + max_tokens {request.sampling.max_tokens} > "
                f"max_model_len {limit} of {self.model} at {replica.url}"
            )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        from openai import APIConnectionError, APIStatusError, APITimeoutError
        from openai.types.chat import ChatCompletion

        replica = await self.replicas.acquire()
        outcome, sent_at = "error", time.monotonic()
        try:
            kwargs = _chat_kwargs(self.model, request, self.extra_body)
            response, queued = await self._call(replica, kwargs, sent_at)
            outcome = "late" if queued else "answer"
        except APITimeoutError:
            outcome = "overload"
            raise
        except APIConnectionError:
            outcome = "down"
            raise
        except APIStatusError as exc:
            outcome = "overload" if exc.status_code in (429, 503) else "error"
            raise
        except RequestTimedOut as exc:
            outcome = "down" if exc.dead else "overload"
            raise
        finally:
            self.replicas.release(replica, outcome, sent_at)
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise MalformedResponse(f"not a chat completion: {str(response)[:200]!r}")
        choice = response.choices[0]
        usage = response.usage
        content = choice.message.content or ""
        if request.native_reasoning:
            content = compose(reasoning_of(choice.message), content)
        return ChatResponse(
            text=_prefix(request) + content,
            usage=TokenUsage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
            ),
            finish_reason=choice.finish_reason,
            endpoint=replica.url,
        )

    async def _call(self, replica: Replica, kwargs: dict[str, Any], sent_at: float) -> tuple[Any, bool]:
        """The response and whether it had to wait past a timeout window (queued on a live server)."""
        call = asyncio.ensure_future(replica.client.chat.completions.create(**kwargs))
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


def _chat_kwargs(model: str, request: ChatRequest, extra_body: dict[str, Any]) -> dict[str, Any]:
    s = request.sampling
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": list(request.messages),
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
    }
    if s.seed is not None:
        kwargs["seed"] = s.seed
    fmt = _response_format(request)
    if fmt is not None:
        kwargs["response_format"] = fmt
    extra: dict[str, Any] = dict(extra_body)
    if request.regex is not None:
        # vLLM's structured outputs; other OpenAI-compatible servers ignore or reject it.
        extra["structured_outputs"] = {"regex": request.regex}
    if request.continue_final:
        extra.update(continue_final_message=True, add_generation_prompt=False)
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


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
                    text=_prefix(req) + completion.text,
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

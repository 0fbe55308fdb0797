"""LLM backends: the OpenAI-compatible HTTP client (one or several replicas) and the offline vLLM engine.

Both turn one :class:`ChatRequest` into one :class:`ChatResponse`; retries, caching and concurrency live in the
engine. The HTTP client's own retries are off (``max_retries=0``) so the engine's policy is the only one.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Protocol

from cotforge.errors import CotforgeError
from cotforge.llm.chat import ChatRequest, ChatResponse, MalformedResponse
from cotforge.llm.config import LLMConfig
from cotforge.llm.reasoning import compose, reasoning_of
from cotforge.schemas import TokenUsage


class Backend(Protocol):
    name: str

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
    """``AsyncOpenAI`` against one or more base URLs; each request goes to the replica with the fewest in flight."""

    name = "openai"

    def __init__(self, config: LLMConfig) -> None:
        from openai import AsyncOpenAI

        urls = config.base_urls or [os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")]
        key = config.api_key()
        self.model = config.model
        self.urls = urls
        self.extra_body = dict(config.extra_body)
        self._clients = [
            AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=config.timeout_s) for url in urls
        ]
        self._outstanding = [0] * len(urls)
        self._turn = 0

    def _pick(self) -> int:
        n = len(self._clients)
        # Ties go round-robin so idle replicas share the first burst evenly.
        best = min(range(n), key=lambda i: (self._outstanding[i], (i - self._turn) % n))
        self._turn = (best + 1) % n
        return best

    async def complete(self, request: ChatRequest) -> ChatResponse:
        from openai.types.chat import ChatCompletion

        index = self._pick()
        self._outstanding[index] += 1
        s = request.sampling
        kwargs: dict[str, Any] = {
            "model": self.model,
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
        extra: dict[str, Any] = dict(self.extra_body)
        if request.regex is not None:
            # vLLM's structured outputs; other OpenAI-compatible servers ignore or reject it.
            extra["structured_outputs"] = {"regex": request.regex}
        if request.continue_final:
            extra.update(continue_final_message=True, add_generation_prompt=False)
        if extra:
            kwargs["extra_body"] = extra
        try:
            response = await self._clients[index].chat.completions.create(**kwargs)
        finally:
            self._outstanding[index] -= 1
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
            endpoint=self.urls[index],
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()


class OfflineVLLMBackend:
    """The in-process ``vllm.LLM`` engine. Requests arriving together are run as one batched ``chat`` call."""

    name = "vllm"

    def __init__(self, config: LLMConfig) -> None:
        # In-process engine core: starts in ~12 s instead of ~30 s on CPU.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        from cotforge.serving import CPU_BATCHED_TOKENS, STRUCTURED_OUTPUTS_CONFIG, has_cuda

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

"""What runs on the Ray cluster: the Ray Data job that answers a list of requests, one result row per request.

Two pipelines, chosen by the model's backend:

- ``openai`` (an OpenAI-compatible endpoint fleet): :class:`HttpRequestWorker` actors in ``map_batches``, each
  running cotforge's own request code (the replica set with its adaptive limits, health-aware timeouts and
  failover, the retrying sender, the ``prompt_too_long`` check) on its share of ``concurrency``. Ray Data's
  ``HttpRequestProcessorConfig`` cannot carry this: it posts to one URL (no fleet, no failover), awaits one
  request at a time within a batch (about ``replicas / latency`` requests/s), and fails the whole job on a
  request that exhausts its retries instead of returning that request's failure.
- ``vllm`` (engine replicas on the cluster's GPUs): Ray Data's own ``vLLMEngineProcessorConfig`` processor,
  whose placement groups give each replica ``tensor × pipeline parallel`` GPUs. Per-request seeds and
  structured outputs go in each row's ``sampling_params``; the engine output has no ``finish_reason``, so it is
  read from the token counts (``length`` when the answer used all of ``max_tokens``); there is no reasoning
  parser, so a reasoning model's thinking stays inline in the text.

A result row holds ``id``, ``text``, ``prompt_tokens``, ``completion_tokens``, ``finish_reason``, ``endpoint``
and, for a request that failed, ``reason`` and ``error`` (empty strings otherwise).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from cotforge.errors import CotforgeError
from cotforge.llm.backends import Backend, make_backend
from cotforge.llm.chat import ChatRequest, RequestFailed, request_from_dict, request_to_dict
from cotforge.llm.config import LLMConfig
from cotforge.llm.transport import EngineStats, RetryingSender

RESULT_COLUMNS = (
    "id",
    "text",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "endpoint",
    "reason",
    "error",
)
MODEL_UNAVAILABLE = "model_unavailable"
FLUSH_S = 0.1


def _row(request_id: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": request_id, "text": "", "prompt_tokens": 0, "completion_tokens": 0}
    row.update(finish_reason="", endpoint="", reason="", error="")
    row.update(values)
    return row


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in RESULT_COLUMNS}


def worker_config(config: LLMConfig) -> LLMConfig:
    """What one worker runs: the local executor on its share of ``concurrency`` (the fleet-wide ceiling)."""
    share = max(1, math.ceil(config.concurrency / config.ray.replicas))
    return config.model_copy(update={"executor": "local", "concurrency": share})


class HttpRequestWorker:
    """A Ray Data actor: answers each batch's requests concurrently, yielding results as they arrive."""

    def __init__(self, config_json: str) -> None:
        self.config = LLMConfig.model_validate_json(config_json)
        self.sender = RetryingSender(self.config, EngineStats())
        self.backend: Backend | None = None

    async def __call__(self, batch: dict[str, Any]) -> AsyncIterator[dict[str, list[Any]]]:
        ids = [int(i) for i in batch["id"]]
        if self.backend is None:
            try:
                # Made here, not in __init__: its HTTP clients belong to this actor's event loop.
                self.backend = make_backend(self.config)
            except CotforgeError as exc:  # e.g. no API key in this node's environment
                yield _columns([_row(i, reason=MODEL_UNAVAILABLE, error=str(exc)) for i in ids])
                return
        pending = {
            asyncio.ensure_future(self._one(i, request_from_dict(json.loads(str(text)))))
            for i, text in zip(ids, batch["request"], strict=True)
        }
        while pending:
            # Answers are handed back in small groups, not one by one: each yield is a block in Ray's object
            # store, and a block per request costs more CPU than the request itself.
            done, pending = await asyncio.wait(pending, timeout=FLUSH_S)
            if done:
                yield _columns([task.result() for task in done])

    async def _one(self, request_id: int, request: ChatRequest) -> dict[str, Any]:
        assert self.backend is not None
        try:
            await self.backend.check_fits(request)
            response = await self.sender.send(self.backend, request)
        except RequestFailed as exc:
            usage = exc.usage
            tokens = (
                {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
                if usage
                else {}
            )
            return _row(request_id, reason=exc.reason, error=str(exc), **tokens)
        except CotforgeError as exc:  # the model cannot be used at all (no key on this node, unknown model)
            return _row(request_id, reason=MODEL_UNAVAILABLE, error=str(exc))
        return _row(
            request_id,
            text=response.text,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            finish_reason=response.finish_reason or "",
            endpoint=response.endpoint,
        )


# --- the vLLM engine processor (backend: vllm) ---------------------------------------------------------------


def parallel_size(config: LLMConfig) -> int:
    """GPUs one engine replica spans: tensor × pipeline parallel size from ``engine_args``."""
    args = config.engine_args
    return int(args.get("tensor_parallel_size", 1)) * int(args.get("pipeline_parallel_size", 1))


def vllm_engine_processor_config(config: LLMConfig) -> Any:
    """Ray Data's ``vLLMEngineProcessorConfig`` for the model (validated by the library on construction)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    from cotforge.serving.vllm_server import STRUCTURED_OUTPUTS_CONFIG

    settings = config.ray
    engine_kwargs: dict[str, Any] = {"structured_outputs_config": dict(STRUCTURED_OUTPUTS_CONFIG)}
    engine_kwargs.update(config.engine_args)
    return vLLMEngineProcessorConfig(
        model_source=config.model,
        engine_kwargs=engine_kwargs,
        concurrency=settings.replicas,
        batch_size=settings.batch_size,
        should_continue_on_error=True,  # a failed request comes back as its row's error, not the job's
        runtime_env=settings.runtime_env or None,
    )


def engine_row(row: dict[str, Any]) -> dict[str, Any]:
    """A request row → the engine processor's input (messages and per-request sampling parameters)."""
    request = request_from_dict(json.loads(row["request"]))
    s = request.sampling
    params: dict[str, Any] = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens}
    if s.seed is not None:
        params["seed"] = s.seed
    if request.json_schema is not None:
        params["structured_outputs"] = {"json": request.json_schema, "disable_any_whitespace": True}
    elif request.regex is not None:
        params["structured_outputs"] = {"regex": request.regex}
    prefix = request.messages[-1]["content"] if request.continue_final else ""
    # max_tokens again in a column of its own: the engine stage consumes the row's sampling_params.
    return {
        "id": row["id"],
        "messages": request.messages,
        "sampling_params": params,
        "prefix": prefix,
        "max_tokens": s.max_tokens,
    }


def engine_result(row: dict[str, Any]) -> dict[str, Any]:
    """The engine processor's output row → a result row (``finish_reason`` from the token counts)."""
    error = str(row.get("__inference_error__") or "")
    if error:
        reason = "prompt_too_long" if "maximum model length" in error or "context length" in error else ""
        return _row(int(row["id"]), reason=reason or "request_failed", error=error)
    generated = int(row.get("num_generated_tokens") or 0)
    max_tokens = int(row.get("max_tokens") or 0)
    return _row(
        int(row["id"]),
        text=str(row.get("prefix") or "") + str(row.get("generated_text") or ""),
        prompt_tokens=int(row.get("num_input_tokens") or 0),
        completion_tokens=generated,
        finish_reason="length" if max_tokens and generated >= max_tokens else "stop",
        endpoint="ray:vllm-engine",
    )


# --- the job --------------------------------------------------------------------------------------------------


def run_job(
    config: LLMConfig, items: list[tuple[int, ChatRequest]], stop: threading.Event
) -> Iterator[list[dict[str, Any]]]:
    """Run ``items`` as one Ray Data job; yields result rows as they reach this process (streaming).
    Stops early when ``stop`` is set (the driver was cancelled)."""
    import ray.data

    settings = config.ray
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's engine shows its own progress
    context.print_on_execution_start = False
    rows = [{"id": i, "request": json.dumps(request_to_dict(r), ensure_ascii=False)} for i, r in items]
    # Every worker gets work even when the job is smaller than replicas × batch_size.
    batch_size = max(1, min(settings.batch_size, math.ceil(len(rows) / settings.replicas)))
    blocks = math.ceil(len(rows) / batch_size)
    dataset: Any = ray.data.from_items(rows, override_num_blocks=blocks)
    if config.backend == "vllm":
        from ray.data.llm import build_processor

        processor = build_processor(
            vllm_engine_processor_config(config), preprocess=engine_row, postprocess=engine_result
        )
        dataset = processor(dataset)
    else:
        dataset = dataset.map_batches(
            HttpRequestWorker,
            fn_constructor_kwargs={"config_json": worker_config(config).model_dump_json()},
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=settings.replicas),
            num_cpus=settings.num_cpus,
            num_gpus=settings.num_gpus or 0,
        )
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        if config.backend == "vllm":
            # The processor hands failed rows back without postprocessing them: read those here.
            records = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
            yield [r if not r.get("__inference_error__") else engine_result(r) for r in records]
        else:
            columns = [batch[name].tolist() for name in RESULT_COLUMNS]
            yield [dict(zip(RESULT_COLUMNS, values, strict=True)) for values in zip(*columns, strict=True)]
        if stop.is_set():
            return

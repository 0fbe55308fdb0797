"""The request engine: bounded concurrency, retries with backoff, rate limits, caching, streaming outcomes.

Cache hits are served first, synchronously and in bulk (a fully cached re-run never touches the network or
the event loop's scheduler per record); the misses then stream through ``concurrency`` workers, and each
outcome is handed to the caller's callback the moment it completes, so results are written as they arrive.
A response is written to the cache before the callback sees it: a run killed between the two finds it there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from cotforge.errors import CotforgeError
from cotforge.llm.backends import Backend, make_backend
from cotforge.llm.cache import CachedResponse, RequestCache, open_cache, request_key
from cotforge.llm.chat import ChatRequest, ChatResponse, RequestFailed
from cotforge.llm.config import LLMConfig
from cotforge.llm.pricing import LEDGER_FILE, UsageLedger, cost_of, price_for
from cotforge.llm.progress import EngineProgress
from cotforge.llm.reask import reask_messages, reason_of
from cotforge.llm.transport import (
    EngineStats,
    RetryingSender,
)
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import SamplingParams, TokenUsage

T = TypeVar("T")

# Re-asking a greedy decoder gives the same text; parse retries sample at least this warm.
RETRY_MIN_TEMPERATURE = 0.7


@dataclass
class RequestOutcome(Generic[T]):
    """What became of one request: a parsed value, or an error with every raw text received."""

    request: ChatRequest
    value: T | None
    text: str | None
    sampling: SamplingParams
    usage: TokenUsage = field(default_factory=TokenUsage)
    latency_s: float = 0.0
    cached: bool = False
    attempts: int = 0
    reason: str | None = None
    error: str | None = None
    failed_texts: list[str] = field(default_factory=list)
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


class RequestEngine:
    """Runs many :class:`ChatRequest` through a model backend (see the module docstring)."""

    def __init__(
        self,
        config: LLMConfig,
        cache: RequestCache | None = None,
        backend: Backend | None = None,
        progress: bool = True,
        label: str = "requests",
        ledger_path: Path | None = None,
    ) -> None:
        self.config = config
        self.cache = cache
        self._backend = backend
        self.progress = progress
        self.label = label
        self.stats = EngineStats()
        self._sender = RetryingSender(config, self.stats)
        # What the server answered is paid for: kept in the run folder (beside the cache) across resumes, and
        # counted with the cache off too when the stage names its ledger.
        if ledger_path is None and cache is not None:
            ledger_path = cache.path.parent / LEDGER_FILE
        self._ledger = UsageLedger(ledger_path, label, config) if ledger_path is not None else None

    # --- what is sent ---------------------------------------------------------------------------------------

    def sampling_for(self, request: ChatRequest, attempt: int) -> SamplingParams:
        """The sampling of attempt ``attempt`` (0 = as configured; re-asks change the seed and warm up)."""
        if attempt == 0:
            return request.sampling
        s = request.sampling
        return s.model_copy(
            update={
                "seed": (s.seed or 0) + 1_000_003 * attempt,
                "temperature": max(s.temperature, RETRY_MIN_TEMPERATURE),
            }
        )

    def key_of(self, request: ChatRequest, sampling: SamplingParams) -> str:
        schema = request.json_schema if request.regex is None else {"regex": request.regex}
        if self.config.extra_body:  # extra request fields (a grammar, template switches) change the answer
            schema = {"schema": schema, "extra_body": self.config.extra_body}
        return request_key(self.config.model, request.messages, sampling.model_dump(mode="json"), schema)

    # --- running --------------------------------------------------------------------------------------------

    def run(
        self,
        requests: Iterable[ChatRequest],
        parse: Callable[[ChatRequest, str], T],
        on_outcome: Callable[[RequestOutcome[T]], None],
    ) -> EngineStats:
        """Obtain every request; ``parse`` turns text into a value (raise to reject), ``on_outcome`` stores it."""
        return asyncio.run(self.arun(requests, parse, on_outcome))

    async def arun(
        self,
        requests: Iterable[ChatRequest],
        parse: Callable[[ChatRequest, str], T],
        on_outcome: Callable[[RequestOutcome[T]], None],
    ) -> EngineStats:
        t0 = time.perf_counter()
        todo = list(requests)
        self.stats.total += len(todo)
        with EngineProgress(self.label, len(todo), enabled=self.progress) as bar:

            def emit(outcome: RequestOutcome[T]) -> None:
                on_outcome(outcome)
                self.stats.done += 1
                self.stats.failed += int(not outcome.ok)
                self.stats.cached += int(outcome.cached)
                bar.advance(outcome.cached, not outcome.ok)

            misses = self._serve_cached(todo, parse, emit)
            if misses:
                backend = self._backend or self._make_backend()
                try:
                    await self._send_all(backend, misses, parse, emit)
                finally:
                    if self._backend is None:
                        await backend.aclose()
                    if self._ledger is not None:
                        self._ledger.close()
        self.stats.elapsed_s += time.perf_counter() - t0
        return self.stats

    def _make_backend(self) -> Backend:
        if self.config.mode == "batch" and self.cache is None:
            raise CotforgeError(
                "`mode: batch` keeps its results and batch ids in the run folder: turn the request cache on "
                "(use_cache: true)"
            )
        if self.config.executor == "ray":
            from cotforge.llm.ray_executor import RayBackend

            return RayBackend(self.config)
        return make_backend(self.config, self.cache.path.parent if self.cache is not None else None)

    def _serve_cached(
        self,
        todo: list[ChatRequest],
        parse: Callable[[ChatRequest, str], T],
        emit: Callable[[RequestOutcome[T]], None],
    ) -> list[ChatRequest]:
        if self.cache is None:
            return todo
        keys = [self.key_of(r, r.sampling) for r in todo]
        hits = self.cache.get_many(keys)
        misses: list[ChatRequest] = []
        for request, key in zip(todo, keys, strict=True):
            hit = hits.get(key)
            if hit is None:
                misses.append(request)
                continue
            try:
                value = parse(request, hit.text)
            except Exception:
                misses.append(request)  # the worker re-asks with the next attempts
                continue
            self.stats.cached_usage = self.stats.cached_usage + hit.usage
            outcome = RequestOutcome(request, value, hit.text, request.sampling, hit.usage, 0.0, True, 1)
            outcome.finish_reason = hit.finish_reason
            emit(outcome)
        return misses

    async def _send_all(
        self,
        backend: Backend,
        misses: list[ChatRequest],
        parse: Callable[[ChatRequest, str], T],
        emit: Callable[[RequestOutcome[T]], None],
    ) -> None:
        queue = iter(misses)

        async def worker() -> None:
            for request in queue:
                emit(await self._obtain(backend, request, parse))

        # A batch backend takes the whole request list at once; the provider schedules it.
        slots = len(misses) if getattr(backend, "takes_all", False) else self.config.concurrency
        workers = [asyncio.create_task(worker()) for _ in range(min(slots, len(misses)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    async def _obtain(
        self, backend: Backend, request: ChatRequest, parse: Callable[[ChatRequest, str], T]
    ) -> RequestOutcome[T]:
        outcome: RequestOutcome[T] = RequestOutcome(request, None, None, request.sampling)
        t0 = time.perf_counter()
        asked = request
        checked = False
        for attempt in range(self.config.parse_retries + 1):
            sampling = self.sampling_for(request, attempt)
            outcome.sampling = sampling
            outcome.attempts = attempt + 1
            key = self.key_of(asked, sampling)
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is None:
                outcome.cached = False
            try:
                if hit is None and not checked:
                    checked = True
                    await backend.check_fits(request)
                response = hit if hit is not None else await self._send(backend, asked, sampling, key)
            except RequestFailed as exc:
                outcome.reason, outcome.error = exc.reason, str(exc)
                break
            if hit is not None:
                # Cached = nothing was sent for it: every attempt so far came from the cache.
                outcome.cached = attempt == 0 or outcome.cached
                self.stats.cached_usage = self.stats.cached_usage + hit.usage
            outcome.usage = outcome.usage + response.usage
            outcome.text = response.text
            outcome.finish_reason = response.finish_reason
            try:
                outcome.value = parse(request, response.text)
            except Exception as exc:
                outcome.failed_texts.append(response.text)
                outcome.reason, outcome.error = "parse_failed", f"{type(exc).__name__}: {exc}"
                self.stats.parse_retries += int(attempt < self.config.parse_retries)
                if self.config.parse_retry == "reask" and attempt < self.config.parse_retries:
                    self.stats.reasks += 1
                    messages = reask_messages(
                        request.messages, response.text, reason_of(exc), request.continue_final
                    )
                    asked = dataclasses.replace(request, messages=messages)
                continue
            self.stats.reask_successes += int(asked is not request)
            outcome.reason = outcome.error = None
            break
        outcome.latency_s = time.perf_counter() - t0
        return outcome

    async def _send(
        self, backend: Backend, request: ChatRequest, sampling: SamplingParams, key: str
    ) -> ChatResponse:
        try:
            response = await self._sender.send(backend, dataclasses.replace(request, sampling=sampling))
        except RequestFailed as exc:
            if exc.usage is not None and self._ledger is not None:
                self._ledger.record(
                    exc.usage
                )  # an answer that showed the request too long was still paid for
            raise
        if self._ledger is not None:
            self._ledger.record(response.usage)
        if self.cache is not None:
            self.cache.put(
                key, self.config.model, CachedResponse(response.text, response.usage, response.finish_reason)
            )
        return response


def usage_summary(stats: EngineStats, config: LLMConfig) -> dict[str, Any]:
    """Token and cost figures for a manifest's ``extra``."""
    out: dict[str, Any] = {
        "requests_sent": stats.sent,
        "retries": stats.retries,
        "parse_retries": stats.parse_retries,
        "parse_retry": config.parse_retry,
        "reasks": stats.reasks,
        "reask_successes": stats.reask_successes,
        "reask_success_rate": round(stats.reask_successes / stats.reasks, 4) if stats.reasks else None,
        "mode": config.mode,
        "cached": stats.cached,
        "prompt_tokens": stats.usage.prompt_tokens,
        "completion_tokens": stats.usage.completion_tokens,
        "cached_prompt_tokens": stats.cached_usage.prompt_tokens,
        "cached_completion_tokens": stats.cached_usage.completion_tokens,
        "endpoints": dict(stats.endpoints),
        "elapsed_s": round(stats.elapsed_s, 3),
    }
    # Cached answers were paid for by an earlier run: they cost nothing here.
    out["cost_usd"] = cost_of(stats.usage, price_for(config), batch=config.mode == "batch")
    return out


class EngineSwitches(Protocol):
    """A stage config's request switches (every model-calling stage has these three)."""

    @property
    def use_cache(self) -> bool: ...

    @property
    def refresh(self) -> bool: ...

    @property
    def progress(self) -> bool: ...


@contextmanager
def run_folder_engine(
    folder: RunFolder,
    config: LLMConfig,
    label: str,
    switches: EngineSwitches | None = None,
    *,
    use_cache: bool = True,
    refresh: bool = False,
    progress: bool = True,
) -> Iterator[RequestEngine]:
    """The engine a stage runs inside its run folder: the run's request cache (unless caching is off) and its
    usage ledger (kept with the cache off too: what the server answered is paid for). Closes the cache.
    ``switches`` (the stage's config) gives ``use_cache``, ``refresh`` and ``progress`` at once."""
    if switches is not None:
        use_cache, refresh, progress = switches.use_cache, switches.refresh, switches.progress
    cache = open_cache(folder, use_cache, refresh)
    try:
        yield RequestEngine(
            config, cache, progress=progress, label=label, ledger_path=folder.path(RunFiles.USAGE)
        )
    finally:
        if cache is not None:
            cache.close()

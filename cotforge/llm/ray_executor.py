"""The Ray executor (``executor: ray``): a stage's uncached requests run as a Ray Data job on a cluster.

What runs where: the stage's driver (this process) plans the requests, serves what the request cache already
holds, and hands the rest to :class:`RayBackend`, which sends them as one Ray Data job
(:mod:`cotforge.llm.ray_workers`) and streams the answers back as they come. Parsing, validation, re-asks, the
cache, the usage ledger, the stage's files and its manifest stay on the driver, exactly as with the local
executor: the engine sees a backend like any other. A request whose answer reached the driver is in its cache
and is never sent again; a killed driver's re-run sends only the rest.

The cluster is joined before any request is sent: an address that does not answer, or a cluster without the
GPUs the engine replicas ask for, fails the stage with a :class:`RayClusterError` naming the address.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from typing import Any

from cotforge.errors import CotforgeError
from cotforge.llm.chat import ChatRequest, ChatResponse, RequestFailed
from cotforge.llm.config import LLMConfig, RaySettings
from cotforge.llm.ray_workers import MODEL_UNAVAILABLE, parallel_size, run_job
from cotforge.llm.transport import ModelUnavailableError
from cotforge.schemas import TokenUsage

CONNECT_TIMEOUT_S = 5.0
SETTLE_S = 0.02


class RayClusterError(CotforgeError):
    """The Ray cluster cannot be joined, or lacks what the stage asks of it."""


def _where(settings: RaySettings) -> str:
    return f"ray.address {settings.address!r}" if settings.address else "the local Ray cluster"


def _reachable(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there (Ray itself would retry for a minute)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            return
    except (OSError, ValueError) as exc:
        raise RayClusterError(
            f"ray.address {address!r}: no Ray cluster answers there ({exc}); start one (`ray start --head`, "
            "`ray up cluster.yaml`) or fix the address; nothing was sent"
        ) from None


def _gist(exc: BaseException) -> str:
    """The cause in a Ray error: its first ``SomeError: message`` line (Ray wraps the remote traceback in its own
    text and colours), else its last line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return ((causes or lines or [type(exc).__name__])[0 if causes else -1])[:300]


def gpus_per_replica(config: LLMConfig) -> float:
    if config.ray.num_gpus is not None:
        return config.ray.num_gpus
    return float(parallel_size(config)) if config.backend == "vllm" else 0.0


def join_cluster(config: LLMConfig) -> dict[str, float]:
    """Join the configured cluster (or start a local one) and check it can hold the replicas; returns the
    cluster's resources. A process that already joined one (a notebook, a test) keeps it."""
    import ray

    settings = config.ray
    address = settings.address.strip()
    if not ray.is_initialized():
        if address and address != "auto":
            _reachable(address)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": "WARNING",
            "log_to_driver": False,
            "runtime_env": settings.runtime_env or None,
        }
        if address:
            kwargs["address"] = address
        elif settings.local_cpus is not None:
            kwargs["num_cpus"] = settings.local_cpus
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise RayClusterError(
                f"{_where(settings)}: could not join the cluster ({type(exc).__name__}: {exc}); nothing was sent"
            ) from None
    resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    gpus = gpus_per_replica(config)
    needed = {"GPU": gpus * settings.replicas, "CPU": settings.num_cpus}
    for name, amount in needed.items():
        if amount > resources.get(name, 0.0):
            raise RayClusterError(
                f"{_where(settings)} has {resources.get(name, 0.0):g} {name}s; the {config.backend} replicas of "
                f"{config.model} ask for {amount:g} ({settings.replicas} × {gpus:g} GPUs, {settings.num_cpus:g} "
                "CPUs each): lower ray.replicas / ray.num_gpus or use a cluster with them; nothing was sent"
            )
    return resources


def _outcome(row: dict[str, Any]) -> ChatResponse | Exception:
    usage = TokenUsage(
        prompt_tokens=int(row["prompt_tokens"]), completion_tokens=int(row["completion_tokens"])
    )
    reason = str(row["reason"])
    if reason == MODEL_UNAVAILABLE:
        return ModelUnavailableError(f"on a Ray worker: {row['error']}")
    if reason:
        return RequestFailed(reason, str(row["error"]), usage if usage.total_tokens else None)
    finish = str(row["finish_reason"]) or None
    return ChatResponse(
        text=str(row["text"]), usage=usage, finish_reason=finish, endpoint=str(row["endpoint"])
    )


class RayBackend:
    """The engine's backend for ``executor: ray`` (see the module docstring). Requests that arrive together
    (the engine hands over every miss at once) go out as one job; re-asks that arrive later, as the next."""

    name = "ray"
    takes_all = True

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.resources = join_cluster(config)
        self._pending: list[tuple[int, ChatRequest, asyncio.Future[ChatResponse]]] = []
        self._next_id = 0
        self._runner: asyncio.Task[None] | None = None

    async def check_fits(self, request: ChatRequest) -> None:
        """Judged on the workers, which know the served context."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._pending.append((self._next_id, request, future))
        self._next_id += 1
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._pending:
            count = -1
            while count != len(self._pending):  # until the engine has handed over all it has
                count = len(self._pending)
                await asyncio.sleep(SETTLE_S)
            todo, self._pending = self._pending, []
            try:
                await self._job(todo)
            except Exception as exc:
                failure = RayClusterError(
                    f"{_where(self.config.ray)}: the Ray job failed: {_gist(exc)}; the answers that came back "
                    "are kept: re-run the same command to resume"
                )
                for _, _, future in todo:
                    if not future.done():
                        future.set_exception(failure)

    async def _job(self, todo: list[tuple[int, ChatRequest, asyncio.Future[ChatResponse]]]) -> None:
        loop = asyncio.get_running_loop()
        futures = {i: future for i, _, future in todo}
        stop = threading.Event()

        def deliver(rows: list[dict[str, Any]]) -> None:
            for row in rows:
                future = futures.pop(int(row["id"]), None)
                if future is None or future.done():
                    continue  # a batch re-run after a worker died: its answer arrived already
                outcome = _outcome(row)
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

        def iterate() -> None:
            for rows in run_job(self.config, [(i, r) for i, r, _ in todo], stop):
                loop.call_soon_threadsafe(deliver, rows)

        try:
            await asyncio.to_thread(iterate)
        finally:
            stop.set()
        await asyncio.sleep(0)  # let the last deliveries run
        for future in futures.values():
            if not future.done():
                future.set_exception(
                    RequestFailed("request_failed", "the Ray job ended without an answer for it")
                )

    async def aclose(self) -> None:
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)

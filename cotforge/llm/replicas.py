"""The replicas behind one OpenAI-compatible model: who gets the next request, who is down, what they serve.

Each replica has its own adaptive limit (:class:`AIMDLimit`); a request goes to the live replica with the most
room (fewest in flight relative to its limit, ties round-robin) and waits when every replica is full. A replica
that refuses connections is taken out for a while (doubling, capped), so its requests are re-routed by the
engine's retry to the others; when every replica is out, requests still go to the one back soonest, so a dead
fleet fails loudly instead of waiting forever.

Small side channels to vLLM's own endpoints (``/health``, ``/v1/models``) tell a queued request from a dead server
and give the served context length (asked once per replica, never per request); servers that lack them are
simply not asked again.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

from cotforge.llm.concurrency import AIMDLimit

DOWN_FIRST_S = 1.0
DOWN_MAX_S = 30.0
HEALTH_TTL_S = 2.0
PROBE_TIMEOUT_S = 5.0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process for every HTTP client: loading the CA bundle costs ~30 ms of CPU, which a
    16-replica fleet otherwise paid 16 times per stage run (and again in every Ray worker)."""
    return httpx2.create_ssl_context()


def server_root(base_url: str) -> str:
    """``http://host:port`` of a ``…/v1`` base URL (where vLLM serves ``/health``)."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


@dataclass
class Replica:
    """One endpoint's live state."""

    url: str
    clients: list[Any]  # openai.AsyncOpenAI, one per pool of connections (used in turn)
    limit: AIMDLimit
    in_flight: int = 0
    down_until: float = 0.0
    connect_failures: int = 0
    health: tuple[float, bool] | None = None
    # None = not asked yet; 0 = the server does not say.
    max_model_len: int | None = None
    _info_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    _next_client: int = 0

    def is_up(self, now: float) -> bool:
        return now >= self.down_until

    def client(self) -> Any:
        """The next of this replica's HTTP clients (round-robin)."""
        self._next_client = (self._next_client + 1) % len(self.clients)
        return self.clients[self._next_client]


class ReplicaSet:
    """Routing, adaptive limits, health and context-length probes over a list of replicas."""

    def __init__(self, replicas: list[Replica], model: str) -> None:
        self.replicas = replicas
        self.model = model
        self._turn = 0
        self._room = asyncio.Event()
        self._probe: httpx2.AsyncClient | None = None

    # --- routing --------------------------------------------------------------------------------------------

    def _pick(self, now: float) -> Replica | None:
        n = len(self.replicas)
        usable = [r.is_up(now) for r in self.replicas]
        if not any(usable):
            # Every replica is out: use the one back soonest (the engine's retries then bound a dead fleet).
            soonest = min(range(n), key=lambda i: self.replicas[i].down_until)
            usable[soonest] = True
        best, best_key = -1, (2.0, 0)
        for i, r in enumerate(self.replicas):
            slots = r.limit.slots
            if not usable[i] or r.in_flight >= slots:
                continue
            # The emptiest relative to its limit; ties keep the rotation.
            key = (r.in_flight / slots, (i - self._turn) % n)
            if key < best_key:
                best, best_key = i, key
        if best < 0:
            return None
        self._turn = (best + 1) % n
        return self.replicas[best]

    async def acquire(self) -> Replica:
        """The replica for the next request (waits while every replica is at its limit)."""
        while True:
            replica = self._pick(time.monotonic())
            if replica is not None:
                replica.in_flight += 1
                return replica
            self._room.clear()
            await self._room.wait()

    def release(self, replica: Replica, outcome: str, sent_at: float) -> None:
        """``outcome``: ``answer`` (in time), ``late`` (answered after waiting in a queue), ``overload``
        (429/503/timeout), ``down`` (connection refused or reset) or ``error`` (anything else)."""
        in_flight = replica.in_flight
        replica.in_flight -= 1
        now = time.monotonic()
        if outcome == "down":
            replica.connect_failures += 1
            replica.down_until = now + min(DOWN_MAX_S, DOWN_FIRST_S * 2 ** (replica.connect_failures - 1))
            replica.health = (now, False)
        else:
            replica.connect_failures = 0
        if outcome == "answer":
            replica.limit.on_answer(in_flight)
        elif outcome in ("late", "overload"):
            replica.limit.on_overload(now, sent_at)
        self._room.set()

    def overloaded(self, replica: Replica, sent_at: float) -> None:
        """A request sent to ``replica`` at ``sent_at`` outlived the timeout window (it is still waiting)."""
        replica.limit.on_overload(time.monotonic(), sent_at)

    # --- side channels --------------------------------------------------------------------------------------

    def _http(self) -> httpx2.AsyncClient:
        if self._probe is None:
            self._probe = httpx2.AsyncClient(timeout=PROBE_TIMEOUT_S, verify=tls_context())
        return self._probe

    async def alive(self, replica: Replica) -> bool:
        """True when the server answers ``GET /health`` with 200 (it is up, so a slow request is queued)."""
        now = time.monotonic()
        if replica.health is not None and now - replica.health[0] < HEALTH_TTL_S:
            return replica.health[1]
        try:
            ok = (await self._http().get(server_root(replica.url) + "/health")).status_code == 200
        except httpx2.HTTPError:
            ok = False
        replica.health = (time.monotonic(), ok)
        return ok

    async def max_model_len(self, replica: Replica) -> int:
        """The served context length from ``GET /v1/models`` (vLLM's ``max_model_len``); 0 when not said."""
        async with replica._info_lock:
            if replica.max_model_len is None:
                replica.max_model_len = 0
                try:
                    response = await self._http().get(replica.url.rstrip("/") + "/models")
                    for entry in response.json().get("data", []):
                        if entry.get("id") == self.model and isinstance(entry.get("max_model_len"), int):
                            replica.max_model_len = entry["max_model_len"]
                except (httpx2.HTTPError, ValueError, AttributeError):
                    pass
        return replica.max_model_len

    async def aclose(self) -> None:
        for replica in self.replicas:
            for client in replica.clients:
                await client.close()
        if self._probe is not None:
            await self._probe.aclose()

"""Client-side request and token rate limits (token buckets refilled continuously)."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """Waits until a request (and its estimated tokens) fits the per-minute budgets; no-op when unlimited."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self._requests = requests_per_minute or 0.0
        self._tokens = tokens_per_minute or 0.0
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None

    def _refill(self) -> None:
        now = time.monotonic()
        elapsed = now - self._last
        self._last = now
        if self.rpm is not None:
            self._requests = min(self.rpm, self._requests + elapsed * self.rpm / 60.0)
        if self.tpm is not None:
            self._tokens = min(self.tpm, self._tokens + elapsed * self.tpm / 60.0)

    def _wait_needed(self, tokens: int) -> float:
        wait = 0.0
        if self.rpm is not None and self._requests < 1.0:
            wait = max(wait, (1.0 - self._requests) * 60.0 / self.rpm)
        if self.tpm is not None:
            # A request larger than the whole budget waits for a full bucket rather than forever.
            need = min(float(tokens), self.tpm)
            if self._tokens < need:
                wait = max(wait, (need - self._tokens) * 60.0 / self.tpm)
        return wait

    async def acquire(self, tokens: int) -> None:
        if self.unlimited:
            return
        async with self._lock:
            while True:
                self._refill()
                wait = self._wait_needed(tokens)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.rpm is not None:
                self._requests -= 1.0
            if self.tpm is not None:
                self._tokens -= min(float(tokens), self.tpm)

    def settle(self, estimated: int, actual: int) -> None:
        """Give back (or charge) the difference between the estimate and the tokens really used."""
        if self.tpm is not None:
            self._tokens = min(self.tpm, self._tokens + estimated - actual)

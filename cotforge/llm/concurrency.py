"""Adaptive concurrency per replica: additive increase, multiplicative decrease (AIMD), within a maximum.

Pure state, no I/O and no clock of its own (callers pass ``now``), so the policy is tested directly. A replica
starts at ``initial`` requests in flight; every answer that came back in time while the limit was in use adds
``1/limit`` (about one more slot per round of ``limit`` answers); an overload signal (an answer that needed
longer than the timeout window, a 429/503, a timeout) multiplies the limit by ``backoff``, at
most once per ``cooldown_s`` and never for a request sent before the last decrease, so a burst of
simultaneous timeouts counts as one congestion event, not ten (TCP's one decrease per window).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AIMDLimit:
    """How many requests one replica may have in flight; see the module docstring."""

    maximum: int
    initial: float
    minimum: int = 1
    backoff: float = 0.5
    cooldown_s: float = 5.0
    enabled: bool = True
    limit: float = 0.0
    decreases: int = 0
    _last_decrease: float = float("-inf")

    def __post_init__(self) -> None:
        if self.maximum < 1 or self.minimum < 1 or self.minimum > self.maximum:
            raise ValueError(
                f"AIMD bounds must satisfy 1 <= minimum <= maximum, got {self.minimum}..{self.maximum}"
            )
        self.limit = float(min(self.maximum, max(self.minimum, self.initial)))

    @property
    def slots(self) -> int:
        """Whole requests allowed in flight now (the configured maximum when adaptation is off)."""
        return int(self.limit) if self.enabled else self.maximum

    def on_answer(self, in_flight: int) -> None:
        """An answer arrived in time; grow only if the limit was actually reached (``in_flight`` before it)."""
        if self.enabled and in_flight >= self.slots:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)

    def on_overload(self, now: float, sent_at: float | None = None) -> bool:
        """The replica is overloaded; returns True when this signal lowered the limit. A request sent before
        the last decrease was launched under the old limit and says nothing about the new one."""
        if not self.enabled or now - self._last_decrease < self.cooldown_s:
            return False
        if sent_at is not None and sent_at < self._last_decrease:
            return False
        self._last_decrease = now
        new = max(float(self.minimum), self.limit * self.backoff)
        lowered = new < self.limit
        self.limit = new
        self.decreases += int(lowered)
        return lowered

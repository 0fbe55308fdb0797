"""A stage's spend over every engine run it makes: tokens, requests sent and served from the cache, cost.

A stage that asks several models (a judge ensemble, eval's models and judges) or asks in rounds (validate's
re-asks) adds each engine's stats here and writes the totals into its manifest once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import EngineStats, usage_summary
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import TokenUsage


@dataclass
class StageSpend:
    """A stage's tokens, requests and cost over every engine run it makes (several models, several rounds)."""

    usage: TokenUsage = field(default_factory=TokenUsage)
    sent: int = 0
    cached: int = 0
    cost_usd: float | None = 0.0
    engines: int = 0

    def add(self, stats: EngineStats, config: LLMConfig) -> dict[str, Any]:
        """Count one engine's run (its stats are cumulative: add each engine once); returns its summary."""
        summary = usage_summary(stats, config)
        self.usage = self.usage + stats.usage
        self.sent += stats.sent
        self.cached += stats.cached
        cost = summary["cost_usd"]
        self.cost_usd = None if cost is None or self.cost_usd is None else round(self.cost_usd + cost, 6)
        self.engines += 1
        return summary

    def record(self, run: StageRun) -> None:
        """Write the totals into the stage's manifest (cost unknown if no engine ran)."""
        run.usage, run.requests, run.cached_requests = self.usage, self.sent, self.cached
        run.cost_usd = self.cost_usd if self.engines else None

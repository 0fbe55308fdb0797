"""The LLM interface: one request engine over OpenAI-compatible servers or the offline vLLM engine.

Every stage that asks a model something (generate, validate's LLM refusal check, augment, sample, judge, eval)
builds :class:`ChatRequest` records and hands them to :class:`RequestEngine`, which brings bounded concurrency,
retries, rate limits, the SQLite request cache, streaming results and progress.
"""

from cotforge.llm.config import LLMConfig, PriceTable, RateLimits
from cotforge.llm.engine import ChatRequest, EngineStats, RequestEngine, RequestOutcome

__all__ = [
    "ChatRequest",
    "EngineStats",
    "LLMConfig",
    "PriceTable",
    "RateLimits",
    "RequestEngine",
    "RequestOutcome",
]

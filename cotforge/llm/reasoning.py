"""Reasoning-model teachers: the server's separate reasoning field becomes the ``<think>`` segment.

vLLM's reasoning parsers return a model's thinking as ``reasoning`` (``reasoning_content`` before vLLM 0.11);
other OpenAI-compatible APIs use either name. :func:`compose` writes reasoning and answer in the tagged form,
so the sample is parsed and validated exactly like a tagged one.
"""

from __future__ import annotations

from typing import Any

from cotforge.tagged import ANSWER_SEPARATOR, THINK_CLOSE, THINK_OPEN

REASONING_FIELDS = ("reasoning_content", "reasoning")


def reasoning_of(message: Any) -> str | None:
    """The separate reasoning of a chat completion message (an SDK object or a dict), or ``None``."""
    extra = getattr(message, "model_extra", None) or {}
    for name in REASONING_FIELDS:
        value = message.get(name) if isinstance(message, dict) else getattr(message, name, None)
        if value is None:
            value = extra.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def compose(reasoning: str | None, content: str) -> str:
    """``<think>`` reasoning ``</think>`` + blank line + answer; the content as is when there is no reasoning
    (so a server without a reasoning parser fails validation with "no <think>" rather than passing)."""
    if reasoning is None:
        return content
    # The parser's own tags may be left in by some servers: do not double them.
    body = reasoning.strip().removeprefix(THINK_OPEN).removesuffix(THINK_CLOSE).strip()
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}{ANSWER_SEPARATOR}{content.strip()}"

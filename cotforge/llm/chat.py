"""The chat request and response every backend, the engine and the model-calling stages share (a leaf module)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cotforge.schemas import SamplingParams, TokenUsage


class MalformedResponse(Exception):
    """A response the server sent that is not a chat completion (truncated, not JSON, no choices)."""


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to obtain. ``key`` names the output slot (e.g. a sample id) and is unique per run."""

    key: str
    messages: list[dict[str, str]]
    sampling: SamplingParams
    json_schema: dict[str, Any] | None = None
    schema_name: str = "output"
    regex: str | None = None
    # The last message is an assistant turn the model continues (vLLM `continue_final_message`); the
    # returned text starts with that turn's content.
    continue_final: bool = False
    # The server returns its thinking separately (a reasoning parser): it becomes the <think> segment.
    native_reasoning: bool = False


@dataclass(frozen=True)
class ChatResponse:
    """One completion as a backend returns it."""

    text: str
    usage: TokenUsage
    finish_reason: str | None
    endpoint: str


class RequestFailed(Exception):
    """A request that will not succeed however often it is sent; ``reason`` is its reject reason code and
    ``usage`` what the server charged for the answer that showed it (none when nothing was generated)."""

    def __init__(self, reason: str, message: str, usage: TokenUsage | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.usage = usage


def request_to_dict(request: ChatRequest) -> dict[str, Any]:
    """``request`` as plain JSON-able data (it crosses process boundaries to the Ray executor's workers)."""
    return {**dataclasses.asdict(request), "sampling": request.sampling.model_dump(mode="json")}


def request_from_dict(data: dict[str, Any]) -> ChatRequest:
    """The inverse of :func:`request_to_dict`."""
    return ChatRequest(**{**data, "sampling": SamplingParams.model_validate(data["sampling"])})

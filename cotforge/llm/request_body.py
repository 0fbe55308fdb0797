"""The chat-completion request body and the reading of its answer: one builder for every path that sends.

Online requests (:class:`~cotforge.llm.backends.OpenAIBackend`), batch input lines
(:mod:`cotforge.llm.batch`) and the Ray executor's workers (which run the online backend) all send the body
:func:`chat_request_body` builds, and read the answer with :func:`response_of`, so the three cannot drift apart.
The body is a plain JSON object posted as is: the openai SDK's per-call parameter transformation is skipped
(it costs more client CPU than the rest of a request's handling together).
"""

from __future__ import annotations

from typing import Any

from cotforge.llm.chat import ChatRequest, ChatResponse, MalformedResponse
from cotforge.llm.reasoning import compose, reasoning_of
from cotforge.schemas import TokenUsage


def chat_request_body(model: str, request: ChatRequest, extra_body: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /v1/chat/completions`` body for ``request`` (``extra_body``: the config's extra fields)."""
    s = request.sampling
    body: dict[str, Any] = {
        "model": model,
        "messages": list(request.messages),
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        **extra_body,
    }
    if s.seed is not None:
        body["seed"] = s.seed
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": request.json_schema, "strict": True},
        }
    if request.regex is not None:
        # vLLM's structured outputs; other OpenAI-compatible servers ignore or reject it.
        body["structured_outputs"] = {"regex": request.regex}
    if request.continue_final:
        body.update(continue_final_message=True, add_generation_prompt=False)
    return body


def prefix_of(request: ChatRequest) -> str:
    """The assistant text the model was asked to continue (part of the output it returns)."""
    return request.messages[-1]["content"] if request.continue_final else ""


def response_of(request: ChatRequest, data: Any, endpoint: str) -> ChatResponse:
    """The :class:`ChatResponse` in a chat-completion JSON object (raises :class:`MalformedResponse`)."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"not a chat completion ({exc!r}): {str(data)[:200]!r}") from None
    if not isinstance(content, str):
        raise MalformedResponse(f"the message content is not text: {str(content)[:200]!r}")
    if request.native_reasoning:
        content = compose(reasoning_of(message), content)
    return ChatResponse(
        text=prefix_of(request) + content,
        usage=TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
        finish_reason=choice.get("finish_reason"),
        endpoint=endpoint,
    )

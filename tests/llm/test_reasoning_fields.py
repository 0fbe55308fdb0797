"""Reasoning fields of OpenAI-compatible APIs become the <think> segment of a tagged text."""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletionMessage

from cotforge.generation.requests import parse_rationale
from cotforge.llm.reasoning import compose, reasoning_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_both_field_names_are_read(field: str) -> None:
    message = ChatCompletionMessage.model_validate(
        {"role": "assistant", "content": "Hi.", field: "1. a\n2. b"}
    )
    assert reasoning_of(message) == "1. a\n2. b"
    assert reasoning_of({"content": "x", field: "r"}) == "r"
    assert reasoning_of({"content": "x", field: "  "}) is None


def test_composed_text_parses_like_a_tagged_sample() -> None:
    text = compose("<think>\nFirst step.\n2. Second step.\n</think>", "\n\nThe answer.")
    rationale = parse_rationale("native_reasoning", text)
    assert rationale.reasoning_steps == ["First step.", "Second step."]
    assert rationale.answer == "The answer."
    # No separate reasoning: the content alone, which fails as a tagged sample would.
    assert compose(None, "Just an answer.") == "Just an answer."
    with pytest.raises(ValueError, match="<think>"):
        parse_rationale("native_reasoning", compose(None, "Just an answer."))

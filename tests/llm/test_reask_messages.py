"""Re-ask messages: the validator's reason in the model's words, the failed output as an assistant turn."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from cotforge.llm.reask import reask_messages, reason_of
from cotforge.schemas import Rationale

pytestmark = pytest.mark.unit


def _error(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def test_reasons_name_the_problem() -> None:
    empty_step = _error(lambda: Rationale.model_validate({"reasoning_steps": ["a", "b", ""], "answer": "x"}))
    assert isinstance(empty_step, ValidationError)
    assert reason_of(empty_step) == "JSON does not match the schema: step 3 is empty"
    no_close = _error(lambda: Rationale.from_tagged("<think>\n1. a\nanswer"))
    assert "</think>" in reason_of(no_close)
    bad_json = _error(lambda: json.loads('{"reasoning_steps": ['))
    assert reason_of(bad_json).startswith("it is not valid JSON")
    missing = _error(lambda: Rationale.model_validate({"reasoning_steps": ["a"]}))
    assert reason_of(missing) == "JSON does not match the schema: answer: Field required"


def test_reask_conversation_keeps_the_request_and_a_prefill_last() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    turns = reask_messages(messages, "bad", "no </think> tag in the output")
    assert turns[:2] == messages
    assert turns[2] == {"role": "assistant", "content": "bad"}
    assert turns[3]["role"] == "user" and "no </think> tag in the output" in turns[3]["content"]
    prefill = [*messages, {"role": "assistant", "content": "<think>\n1."}]
    turns = reask_messages(prefill, "<think>\n1. bad", "why", continue_final=True)
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user", "assistant"]
    assert turns[-1] == prefill[-1]

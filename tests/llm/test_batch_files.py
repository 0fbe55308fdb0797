"""Batch input files: split at the request-count and byte limits; custom ids are the requests' cache keys."""

from __future__ import annotations

import pytest

from cotforge.errors import CotforgeError
from cotforge.llm.batch import custom_id_of, split_lines
from cotforge.llm.engine import ChatRequest
from cotforge.llm.request_body import chat_request_body
from cotforge.schemas import SamplingParams

pytestmark = pytest.mark.unit


def test_split_respects_both_limits_and_keeps_order() -> None:
    lines = [f"line-{i:03d}" for i in range(10)]  # 9 bytes each, 10 with the newline
    assert split_lines(lines, 4, 10_000) == [lines[0:4], lines[4:8], lines[8:10]]
    assert split_lines(lines, 100, 30) == [lines[0:3], lines[3:6], lines[6:9], lines[9:10]]
    with pytest.raises(CotforgeError, match="max_file_bytes"):
        split_lines(["x" * 50], 10, 20)


def test_custom_id_and_body_follow_what_would_be_sent() -> None:
    base = ChatRequest("k", [{"role": "user", "content": "hi"}], SamplingParams(seed=1), regex="a+")
    other = ChatRequest("k", [{"role": "user", "content": "hi"}], SamplingParams(seed=2), regex="a+")
    assert custom_id_of("m", base) != custom_id_of("m", other)
    assert custom_id_of("m", base) == custom_id_of(
        "m", ChatRequest("other-key", base.messages, base.sampling, regex="a+")
    )
    body = chat_request_body("m", base, {"skip_special_tokens": False})
    assert body["structured_outputs"] == {"regex": "a+"} and body["seed"] == 1
    assert body["skip_special_tokens"] is False and body["model"] == "m"

"""The real-server fixtures work: guided JSON from the tiny model, a plain answer from SmolLM2."""

from __future__ import annotations

import json
import os

import pytest
from openai import OpenAI

from cotforge.serving import VLLMServer

pytestmark = pytest.mark.integration

SCHEMA = {
    "type": "object",
    "properties": {
        "reasoning_steps": {
            "type": "array",
            "items": {"type": "string", "maxLength": 60},
            "minItems": 1,
            "maxItems": 3,
        },
        "answer": {"type": "string", "maxLength": 80},
    },
    "required": ["reasoning_steps", "answer"],
    "additionalProperties": False,
}


def test_tiny_server_returns_schema_valid_json(tiny_vllm_server: VLLMServer) -> None:
    client = OpenAI(base_url=tiny_vllm_server.base_url, api_key="unused")
    resp = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Explain recursion."}],
        max_tokens=400,
        temperature=1.0,
        seed=7,
        response_format={"type": "json_schema", "json_schema": {"name": "rationale", "schema": SCHEMA}},
    )
    data = json.loads(resp.choices[0].message.content or "")
    assert set(data) == {"reasoning_steps", "answer"}
    assert 1 <= len(data["reasoning_steps"]) <= 3
    assert all(isinstance(s, str) and len(s) <= 60 for s in data["reasoning_steps"])
    assert resp.usage is not None and resp.usage.completion_tokens > 0


def test_smollm2_answers_in_words(smollm2_vllm_server: VLLMServer) -> None:
    client = OpenAI(base_url=smollm2_vllm_server.base_url, api_key="unused")
    resp = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
        max_tokens=40,
        temperature=0.0,
    )
    text = resp.choices[0].message.content or ""
    assert "paris" in text.lower()


def test_server_stops_by_pid(tiny_model_dir) -> None:  # type: ignore[no-untyped-def]
    server = VLLMServer(str(tiny_model_dir), served_model_name="tiny", startup_timeout_s=1.0)
    server.start()
    pid = server.process.pid  # type: ignore[union-attr]
    server.stop()
    assert server.process is not None and server.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # signal 0: does any process of the group remain?

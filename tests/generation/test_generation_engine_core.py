"""Engine behaviour that needs no server: attempts served from the cache, Retry-After parsing, and the retry
classification of the errors the OpenAI SDK and the backends raise."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from cotforge.errors import CotforgeError
from cotforge.generation.requests import parse_rationale
from cotforge.llm.backends import MalformedResponse
from cotforge.llm.cache import CachedResponse, RequestCache
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestEngine, RequestOutcome
from cotforge.llm.transport import RETRY_AFTER_CAP_S, _retry_after, classify
from cotforge.schemas import Rationale, SamplingParams, TokenUsage

pytestmark = pytest.mark.unit

REQUEST = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
GOOD = json.dumps({"reasoning_steps": ["Read the question.", "Answer it."], "answer": "Forty-two."})


def test_a_slot_whose_parse_retry_is_cached_is_served_without_sending(tmp_path: Path) -> None:
    # Port 1: any request actually sent would fail; the cache must answer every attempt.
    config = LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"], max_retries=0, parse_retries=2)
    cache = RequestCache(tmp_path / "cache.sqlite")
    engine = RequestEngine(config, cache, progress=False)
    request = ChatRequest("slot-1", [{"role": "user", "content": "q"}], SamplingParams(seed=5), None)
    usage = TokenUsage(prompt_tokens=4, completion_tokens=6)
    cache.put(
        engine.key_of(request, engine.sampling_for(request, 0)), "m", CachedResponse("{oops", usage, "stop")
    )
    cache.put(
        engine.key_of(request, engine.sampling_for(request, 1)), "m", CachedResponse(GOOD, usage, "stop")
    )

    outcomes: list[RequestOutcome[Rationale]] = []
    stats = engine.run([request], lambda _r, text: parse_rationale("structured", text), outcomes.append)
    (outcome,) = outcomes
    assert outcome.ok and outcome.attempts == 2 and outcome.failed_texts == ["{oops"]
    assert outcome.sampling == engine.sampling_for(request, 1)
    assert outcome.cached and stats.cached == 1 and stats.sent == 0
    assert outcome.usage.total_tokens == 20  # both attempts' tokens


def test_a_slot_is_not_cached_once_an_attempt_was_sent(tmp_path: Path) -> None:
    config = LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"], max_retries=0, parse_retries=1)
    cache = RequestCache(tmp_path / "cache.sqlite")
    engine = RequestEngine(config, cache, progress=False)
    request = ChatRequest("slot-1", [{"role": "user", "content": "q"}], SamplingParams(seed=5), None)
    cache.put(engine.key_of(request, request.sampling), "m", CachedResponse("{oops", TokenUsage(), "stop"))
    outcomes: list[RequestOutcome[Rationale]] = []
    stats = engine.run([request], lambda _r, text: parse_rationale("structured", text), outcomes.append)
    (outcome,) = outcomes
    # The second attempt went to the (unreachable) server: a failed, uncached slot with the raw text kept.
    assert not outcome.ok and not outcome.cached and stats.cached == 0 and stats.sent == 1
    assert outcome.reason == "request_failed" and outcome.failed_texts == ["{oops"]


def test_retry_after_header_is_honoured_capped_or_ignored() -> None:
    def limited(value: str | None) -> openai.RateLimitError:
        headers = {"retry-after": value} if value is not None else {}
        response = httpx.Response(429, request=REQUEST, headers=headers)
        return openai.RateLimitError("slow down", response=response, body=None)

    assert _retry_after(limited("0.25")) == 0.25
    assert _retry_after(limited("86400")) == RETRY_AFTER_CAP_S
    assert _retry_after(limited("Wed, 21 Oct 2015 07:28:00 GMT")) is None  # dates: our own backoff
    assert _retry_after(limited(None)) is None
    assert _retry_after(ValueError("no response at all")) is None


def test_retry_classification_of_transport_and_body_errors() -> None:
    def status(code: int) -> openai.APIStatusError:
        return openai.APIStatusError("e", response=httpx.Response(code, request=REQUEST), body=None)

    assert classify(openai.APITimeoutError(request=REQUEST)) == "retry"
    assert classify(MalformedResponse("truncated")) == "retry"
    assert classify(json.JSONDecodeError("not JSON", "<html>", 0)) == "retry"
    assert classify(status(500)) == "retry" and classify(status(502)) == "retry"
    assert classify(status(413)) == "reject"
    assert classify(status(403)) == "abort"
    assert classify(CotforgeError("no API key")) == "abort"


def test_a_remote_base_url_from_the_environment_still_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COTFORGE_TEST_NO_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example.com/v1")
    remote = LLMConfig(model="m", api_key_env="COTFORGE_TEST_NO_KEY")
    assert remote.base_urls == []  # the SDK will use OPENAI_BASE_URL
    with pytest.raises(CotforgeError, match="COTFORGE_TEST_NO_KEY"):
        remote.api_key()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    assert LLMConfig(model="m", api_key_env="COTFORGE_TEST_NO_KEY").api_key() == "EMPTY"

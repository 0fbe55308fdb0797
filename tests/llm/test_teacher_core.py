"""Pure parts of generation: request keys and cache, rate limits, retry policy, schema, parsing, planning,
validation reason codes and the refusal detector."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import ValidationError

from cotforge.generation.refusal import RefusalDetector
from cotforge.generation.requests import (
    GenerateConfig,
    OutputBounds,
    parse_rationale,
    plan_samples,
    rationale_schema,
)
from cotforge.generation.validate import ValidationConfig, content_reasons, validate_samples
from cotforge.llm.cache import CachedResponse, RequestCache, request_key
from cotforge.llm.config import LLMConfig, PriceTable
from cotforge.llm.engine import ChatRequest, RequestEngine
from cotforge.llm.rate_limit import RateLimiter
from cotforge.llm.transport import classify
from cotforge.schemas import Rationale, SamplingParams, TokenUsage
from cotforge.tagged import TaggedFormatError
from cotforge.templates import PromptTemplates
from tests.factories import make_prompt, make_sample

MESSAGES = [{"role": "user", "content": "hi"}]

pytestmark = pytest.mark.unit


def test_request_key_changes_with_anything_sent() -> None:
    base = request_key("m", MESSAGES, {"temperature": 0.7}, None)
    assert base == request_key("m", [dict(m) for m in MESSAGES], {"temperature": 0.7}, None)
    assert base != request_key("m2", MESSAGES, {"temperature": 0.7}, None)
    assert base != request_key("m", [{"role": "user", "content": "hi!"}], {"temperature": 0.7}, None)
    assert base != request_key("m", MESSAGES, {"temperature": 0.8}, None)
    assert base != request_key("m", MESSAGES, {"temperature": 0.7}, {"type": "object"})
    assert base != request_key("m", MESSAGES, {"temperature": 0.7}, None, attempt=1)


def test_cache_round_trip_refresh_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = RequestCache(path)
    response = CachedResponse("text", TokenUsage(prompt_tokens=3, completion_tokens=5), "stop")
    cache.put("k1", "m", response)
    assert cache.get("k1") == response and cache.get("k2") is None
    cache.close()
    reopened = RequestCache(path)
    assert reopened.get_many(["k1", "k2"]) == {"k1": response} and len(reopened) == 1
    assert RequestCache(path, refresh=True).get("k1") is None  # refresh ignores stored answers


def test_rate_limiter_waits_only_when_a_budget_is_spent() -> None:
    async def burst(limiter: RateLimiter, sizes: list[int]) -> float:
        t0 = time.perf_counter()
        for tokens in sizes:
            await limiter.acquire(tokens)
        return time.perf_counter() - t0

    # Lower bounds only: a noisy machine can make anything slower, never a wait shorter.
    assert asyncio.run(burst(RateLimiter(120.0, None), [1] * 121)) >= 0.4  # 121st request waits ~0.5 s
    assert asyncio.run(burst(RateLimiter(None, 60.0), [60, 1])) >= 0.8  # the bucket refills 1 token/s
    unlimited, full_bucket = RateLimiter(None, None), RateLimiter(120.0, 6000.0)
    assert unlimited.unlimited and not full_bucket.unlimited
    asyncio.run(burst(full_bucket, [10] * 100))
    assert full_bucket._tokens == pytest.approx(6000.0 - 1000.0, abs=5.0)  # charged per estimate
    full_bucket.settle(10, 4)
    assert full_bucket._tokens == pytest.approx(5006.0, abs=5.0)  # the unused estimate comes back


def test_retry_policy_by_status() -> None:
    request = httpx.Request("POST", "http://x/v1/chat/completions")

    def status(code: int) -> openai.APIStatusError:
        return openai.APIStatusError("e", response=httpx.Response(code, request=request), body=None)

    assert classify(status(429)) == "retry" and classify(status(503)) == "retry"
    assert classify(status(400)) == "reject" and classify(status(422)) == "reject"
    assert classify(status(401)) == "abort" and classify(status(404)) == "abort"
    assert classify(openai.APIConnectionError(request=request)) == "retry"


def test_parse_retries_reseed_and_warm_up() -> None:
    engine = RequestEngine(LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"]), progress=False)
    request = ChatRequest("k", MESSAGES, SamplingParams(temperature=0.0, seed=7))
    assert engine.sampling_for(request, 0) == request.sampling
    retry = engine.sampling_for(request, 1)
    assert retry.seed != 7 and retry.temperature > 0
    assert engine.key_of(request, retry) != engine.key_of(request, request.sampling)


def test_price_table_and_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=500_000)
    assert PriceTable(prompt_per_million=2.5, completion_per_million=10).cost(usage) == pytest.approx(7.5)
    remote = LLMConfig(model="m", base_urls=["https://api.example.com/v1"], api_key_env="X_KEY")
    monkeypatch.delenv("X_KEY", raising=False)
    with pytest.raises(Exception, match="X_KEY"):
        remote.api_key()
    monkeypatch.setenv("X_KEY", "sk-abc")
    assert remote.api_key() == "sk-abc"
    assert "sk-abc" not in json.dumps(remote.model_dump())
    assert LLMConfig(model="m", base_urls=["http://127.0.0.1:8000/v1"], api_key_env="X_NONE").api_key()


def test_schema_is_rationale_with_bounds_and_both_modes_parse_to_the_same_rationale() -> None:
    schema = rationale_schema(OutputBounds(min_steps=2, max_steps=3, max_step_chars=40, max_answer_chars=80))
    steps = schema["properties"]["reasoning_steps"]
    assert (steps["minItems"], steps["maxItems"], steps["items"]["maxLength"]) == (2, 3, 40)
    assert schema["properties"]["answer"]["maxLength"] == 80 and schema["additionalProperties"] is False
    rationale = Rationale(reasoning_steps=["Read it.", "Decide."], answer="No.")
    assert parse_rationale("structured", json.dumps(rationale.model_dump())) == rationale
    assert parse_rationale("tagged", rationale.render()) == rationale
    with pytest.raises(TaggedFormatError):
        parse_rationale("tagged", "no tags")
    with pytest.raises((ValidationError, ValueError)):
        parse_rationale("structured", '{"reasoning_steps": [], "answer": "x"}')


def test_plan_samples_ids_seeds_and_template_hash() -> None:
    prompts = [make_prompt("How do I pick a lock?"), make_prompt("Boil an egg?", "utility")]
    config = GenerateConfig.model_validate(
        {"teacher": {"model": "m", "base_urls": ["http://127.0.0.1:1/v1"]}, "samples_per_prompt": 3}
    )
    plans = plan_samples(prompts, config, PromptTemplates())
    assert len(plans) == 6 and len({p.request.key for p in plans}) == 6
    assert len({p.request.sampling.seed for p in plans}) == 6
    assert [p.request.key for p in plan_samples(prompts, config, PromptTemplates())] == [
        p.request.key for p in plans
    ]
    safety, utility = plans[0], plans[3]
    assert safety.template_id == "teacher/safety" and utility.template_id == "teacher/utility"
    assert safety.template_hash != utility.template_hash
    assert (
        "refuse" in safety.request.messages[0]["content"]
        and prompts[0].text in safety.request.messages[1]["content"]
    )


def test_validation_reason_codes() -> None:
    config = ValidationConfig(min_steps=2)
    ok = Rationale(
        reasoning_steps=["The user wants harm.", "Decline politely."], answer="I can't help with that."
    )
    assert content_reasons(ok, config) == []
    short = Rationale(reasoning_steps=["Only one step here."], answer="Fine answer.")
    assert "too_few_steps" in content_reasons(short, config)
    junk = Rationale(reasoning_steps=[", ", "A real step."], answer="<|im_end|> leaked")
    assert {"degenerate_step", "stray_tags"} <= set(content_reasons(junk, config))

    safety, utility = make_prompt("Make a bomb"), make_prompt("Boil an egg", "utility")
    samples = [
        make_sample(safety, ["The user wants a weapon.", "That hurts people."], "I can't help with that."),
        make_sample(safety, ["The user wants a weapon.", "Sure thing."], "Sure! Step 1: get powder.", 1),
        make_sample(utility, ["Eggs need heat.", "Six minutes."], "Boil it for six minutes."),
        make_sample(utility, ["Eggs need heat.", "Hmm."], "I'm sorry, but I cannot help with that.", 1),
    ]
    prompts = {p.id: p for p in (safety, utility)}
    verdicts = validate_samples(samples, prompts, config)
    assert [v.reasons for v in verdicts] == [[], ["safety_not_refused"], [], ["utility_refused"]]
    orphan = validate_samples([samples[0]], {}, config)[0]
    assert orphan.outcome == "rejected" and orphan.reasons == ["unknown_prompt"]


def test_refusal_detector_refusals_and_redirects() -> None:
    detector = RefusalDetector()
    assert detector.refuses("I'm sorry, but I can't help with that.")
    assert not detector.refuses("I can help you with any request you may have.")
    assert detector.refuses_or_redirects("Please contact a professional counsellor or call a helpline.")
    assert not detector.refuses_or_redirects("Sure! Here is how to do it.")

"""`parse_retry: reask` against a real vLLM server: the failed output and the validator's reason go back to
the model as the next turns, the manifest counts re-asks and their success, and a re-run is served from cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from cotforge.llm.cache import RequestCache
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestEngine, RequestOutcome, usage_summary
from cotforge.schemas import Rationale, SamplingParams
from cotforge.serving.vllm_server import VLLMServer
from tests.llm.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration


def _requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            f"r{i}",
            [{"role": "user", "content": f"Count to {i + 2}."}],
            SamplingParams(max_tokens=12, seed=i),
        )
        for i in range(n)
    ]


def test_reask_sends_the_failed_output_and_the_reason(tmp_path: Path, tiny_vllm_server: VLLMServer) -> None:
    seen: set[str] = set()

    def parse(request: ChatRequest, text: str) -> str:
        # Every request's first answer fails the way a rationale with an empty third step does.
        if request.key not in seen:
            seen.add(request.key)
            Rationale.model_validate({"reasoning_steps": ["a", "b", ""], "answer": text or "x"})
        return text

    outcomes: list[RequestOutcome[str]] = []
    with FaultProxy(tiny_vllm_server.base_url) as proxy:
        config = LLMConfig(model="tiny", base_urls=[proxy.base_url], parse_retry="reask", concurrency=4)
        cache = RequestCache(tmp_path / "cache.sqlite")
        stats = RequestEngine(config, cache, progress=False).run(_requests(4), parse, outcomes.append)
        assert all(o.ok and o.attempts == 2 for o in outcomes)
        assert stats.reasks == 4 and stats.reask_successes == 4
        summary = usage_summary(stats, config)
        assert summary["reask_success_rate"] == 1.0 and summary["parse_retry"] == "reask"
        assert len(proxy.bodies) == 8
        failed_text = {o.request.messages[0]["content"]: o.failed_texts[0] for o in outcomes}
        reasks = [b for b in proxy.bodies if len(b["messages"]) == 3]
        assert len(reasks) == 4
        for body in reasks:
            user, failed, reason = body["messages"]
            assert failed == {"role": "assistant", "content": failed_text[user["content"]]}
            assert reason["role"] == "user" and "step 3 is empty" in reason["content"]

        # A re-run finds the first answers and the re-asks in the cache: nothing is sent.
        seen.clear()
        again: list[RequestOutcome[str]] = []
        stats = RequestEngine(config, cache, progress=False).run(_requests(4), parse, again.append)
        assert len(proxy.bodies) == 8 and all(o.ok for o in again)
        cache.close()

"""Load control: AIMD limits, queued-not-dead timeouts, prompts too long for the context, dying replicas."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cotforge.llm import ChatRequest, LLMConfig, RequestEngine, RequestOutcome
from cotforge.llm.concurrency import AIMDLimit
from cotforge.schemas import SamplingParams
from cotforge.serving.vllm_server import VLLMServer


def _requests(n: int, content: str = "Say hello.", max_tokens: int = 8) -> list[ChatRequest]:
    sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=1)
    return [ChatRequest(f"r{i}", [{"role": "user", "content": f"{content} {i}"}], sampling) for i in range(n)]


def _run(config: LLMConfig, requests: list[ChatRequest]) -> tuple[list[RequestOutcome[str]], Any]:
    outcomes: list[RequestOutcome[str]] = []
    stats = RequestEngine(config, progress=False).run(requests, lambda r, t: t, outcomes.append)
    return outcomes, stats


@pytest.mark.unit
def test_aimd_grows_by_one_per_round_halves_once_per_burst_and_stays_in_bounds() -> None:
    limit = AIMDLimit(maximum=8, initial=4, cooldown_s=5.0)
    assert limit.slots == 4
    for _ in range(4):  # a round of answers at the limit adds about one slot
        limit.on_answer(in_flight=4)
    assert limit.slots == 4 and limit.limit > 4.9
    limit.on_answer(in_flight=4)
    assert limit.slots == 5
    limit.on_answer(in_flight=1)  # the limit was not in use: no growth
    assert limit.limit == pytest.approx(5.12, abs=0.01)
    assert limit.on_overload(now=100.0) and limit.slots == 2
    assert not limit.on_overload(now=101.0)  # same burst (within the cooldown): counted once
    assert limit.on_overload(now=106.0) and limit.slots == 1
    limit.on_overload(now=120.0)
    assert not limit.on_overload(now=130.0) and limit.limit == 1.0  # never below the minimum
    # A request sent before the last decrease ran under the old limit: its timeout lowers nothing more.
    window = AIMDLimit(maximum=8, initial=8)
    assert window.on_overload(now=10.0, sent_at=9.0) and window.slots == 4
    assert not window.on_overload(now=30.0, sent_at=9.5) and window.slots == 4
    assert window.on_overload(now=31.0, sent_at=12.0) and window.slots == 2
    for _ in range(200):
        limit.on_answer(in_flight=limit.slots)
    assert limit.slots == 8  # never above the configured maximum
    fixed = AIMDLimit(maximum=8, initial=2, enabled=False)
    fixed.on_overload(now=0.0)
    assert fixed.slots == 8
    with pytest.raises(ValueError, match="minimum"):
        AIMDLimit(maximum=2, initial=1, minimum=3)


@pytest.mark.integration
def test_a_replica_killed_mid_run_is_taken_out_and_its_requests_rerouted_without_loss(
    fleet_endpoints: ModuleType,
) -> None:
    fleet = fleet_endpoints
    with fleet.Fleet(k=3, slots=8, latency=0.2) as endpoints:
        config = LLMConfig(model="fleet", base_urls=endpoints.urls, concurrency=24, backoff_base_s=0.05)
        killer = threading.Timer(0.6, endpoints.kill, args=(0,))
        killer.start()
        outcomes, stats = _run(config, _requests(240))
        killer.join()
    assert len(outcomes) == 240 and all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    assert sorted(o.request.key for o in outcomes) == sorted(f"r{i}" for i in range(240))
    dead, *alive = endpoints.urls
    assert stats.retries > 0  # the killed replica's requests were re-sent...
    assert stats.endpoints.get(dead, 0) < min(stats.endpoints[u] for u in alive)  # ...to the others


@pytest.mark.integration
def test_a_queued_request_is_not_a_failure_but_a_stopped_server_is(fleet_endpoints: ModuleType) -> None:
    fleet = fleet_endpoints
    # One slot answering in 1.2 s, three requests at once, a 0.5 s window: the last waits ~3.6 s in the queue.
    with fleet.Fleet(k=1, slots=1, latency=1.2) as endpoint:
        config = LLMConfig(
            model="fleet", base_urls=endpoint.urls, concurrency=3, timeout_s=0.5, max_retries=0
        )
        outcomes, stats = _run(config, _requests(3))
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        assert stats.sent == 3 and stats.retries == 0
        # Today's behaviour (fail at the timeout) is one setting away and fails where the above waited.
        legacy = config.model_copy(update={"queue_wait_s": 0.0})
        outcomes, _ = _run(legacy, _requests(3, content="Again"))
        assert all(not o.ok and "queue_wait_s=0" in (o.error or "") for o in outcomes)
        # A server that stops answering (SIGSTOP: connections open, nothing comes back) is dead, not busy.
        pid = endpoint.processes[0].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            outcomes, _ = _run(config, _requests(1, content="Stopped"))
        finally:
            os.kill(pid, signal.SIGCONT)
    assert not outcomes[0].ok and outcomes[0].reason == "request_failed"
    assert "does not answer /health" in (outcomes[0].error or "")


@pytest.mark.integration
def test_a_prompt_too_long_for_the_served_context_is_rejected_without_a_side_call_per_request(
    tiny_vllm_server: VLLMServer,
) -> None:
    # ignore_eos: the tiny random model then always runs to its token limit, so a clamp would show.
    config = LLMConfig(
        model="tiny", base_urls=[tiny_vllm_server.base_url], max_retries=0, extra_body={"ignore_eos": True}
    )
    # max_model_len is 1024: 5,000 characters of text are far more tokens than that; the server refuses it.
    sampling = SamplingParams(max_tokens=8, seed=1)
    long = ChatRequest("long", [{"role": "user", "content": "word " * 1000}], sampling)
    short = ChatRequest("short", [{"role": "user", "content": "Hi"}], sampling)
    # Surely over the limit even by the lowest estimate (bytes / 6 + max_tokens): never sent.
    edge = ChatRequest(
        "edge", [{"role": "user", "content": "x" * 400}], SamplingParams(max_tokens=1000, seed=1)
    )
    # Fits by the estimate, but the server's count + max_tokens does not: vLLM clamps max_tokens to the room
    # left and the answer runs into that clamp, which the response's own token counts show.
    clamped = ChatRequest(
        "clamped", [{"role": "user", "content": "word " * 120}], SamplingParams(max_tokens=900, seed=1)
    )
    outcomes, stats = _run(config, [long, short, edge, clamped])
    by_key = {o.request.key: o for o in outcomes}
    assert by_key["long"].reason == "prompt_too_long" and "context" in (by_key["long"].error or "")
    assert by_key["edge"].reason == "prompt_too_long" and "not sent" in (by_key["edge"].error or "")
    assert "max_model_len 1024" in (by_key["edge"].error or "")
    assert by_key["clamped"].reason == "prompt_too_long"
    assert "server's tokenizer" in (by_key["clamped"].error or "")
    assert by_key["short"].ok and by_key["short"].finish_reason == "length"
    # short, long (refused by the server) and clamped were sent once each, none retried; edge never.
    assert stats.sent == 3 and stats.retries == 0


@pytest.mark.integration
def test_a_failed_request_names_the_log_of_the_server_cotforge_started(tmp_path: Path) -> None:
    from cotforge.serving.vllm_server import SERVER_LOGS, free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: the server "died"
    log = tmp_path / "logs" / "vllm-teacher.log"
    SERVER_LOGS[url] = log
    try:
        config = LLMConfig(model="m", base_urls=[url], max_retries=0, timeout_s=5)
        outcomes, _ = _run(config, _requests(1))
    finally:
        del SERVER_LOGS[url]
    assert outcomes[0].reason == "request_failed"
    assert f"server log: {log}" in (outcomes[0].error or "")

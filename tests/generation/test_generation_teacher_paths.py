"""`generate` paths tests/llm does not cover, against the real tiny-model vLLM server: several replicas
(least-outstanding spread), token/cost accounting in the manifest, ``--retry-rejects`` re-asking with new seeds,
``--refresh`` and ``--no-cache``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cotforge.generation.generate import generate_in_run
from cotforge.generation.requests import GenerateConfig
from cotforge.llm.config import PriceTable
from cotforge.runfolder import RunFiles, read_jsonl
from cotforge.schemas import RejectRecord, Sample, TokenUsage
from cotforge.serving.vllm_server import VLLMServer
from tests.generation.conftest import tiny_generation
from tests.llm.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration


def _slot_ids(run: Path) -> tuple[list[Sample], list[RejectRecord]]:
    samples = list(read_jsonl(run / RunFiles.SAMPLES, Sample))
    rejects = list(read_jsonl(run / RunFiles.GENERATE_REJECTS, RejectRecord))
    ids = [s.id for s in samples] + [r.record_id for r in rejects]
    assert len(ids) == len(set(ids)), "a slot was written twice"
    return samples, rejects


def _copy_run(src: Path, name: str, with_cache: bool) -> Path:
    dst = src.parent / name
    dst.mkdir()
    shutil.copy(src / RunFiles.PROMPTS, dst / RunFiles.PROMPTS)
    if with_cache:
        shutil.copy(src / RunFiles.CACHE, dst / RunFiles.CACHE)
    return dst


def test_replicas_get_work_by_least_outstanding_and_the_manifest_accounts_tokens_and_cost(
    few_prompts_run: Path, tiny_vllm_server: VLLMServer
) -> None:
    price = {"prompt_per_million": 3.0, "completion_per_million": 15.0}
    # Two "replicas" of the same server: one answers 4 s late, the other at once.
    with (
        FaultProxy(tiny_vllm_server.base_url, delay_s=4.0) as slow,
        FaultProxy(tiny_vllm_server.base_url) as fast,
    ):
        raw = tiny_generation(
            [slow.base_url, fast.base_url], teacher={"concurrency": 4, "price": price}, samples_per_prompt=2
        )
        result = generate_in_run(few_prompts_run, GenerateConfig.model_validate(raw))
    samples, rejects = _slot_ids(few_prompts_run)
    assert result.planned == 12 == len(samples) + len(rejects)
    # Round-robin would split 6/6; least-outstanding keeps sending to the replica that answers.
    assert len(slow.bodies) >= 1 and len(fast.bodies) > len(slow.bodies), (len(slow.bodies), len(fast.bodies))

    manifest = json.loads((few_prompts_run / "manifests" / "generate.json").read_text())
    usage = manifest["extra"]["usage"]
    assert usage["endpoints"] == {slow.base_url: len(slow.bodies), fast.base_url: len(fast.bodies)}
    assert usage["requests_sent"] == len(slow.bodies) + len(fast.bodies)
    total = TokenUsage(prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"])
    in_samples = sum(s.usage.total_tokens for s in samples)
    assert total.prompt_tokens > 0 and total.completion_tokens > 0
    # Samples carry their own tokens; the manifest adds the tokens of rejected and re-asked attempts.
    assert in_samples <= total.total_tokens and (rejects or in_samples == total.total_tokens)
    assert usage["cost_usd"] == pytest.approx(PriceTable.model_validate(price).cost(total))
    assert manifest["usage"]["prompt_tokens"] == total.prompt_tokens
    assert manifest["usage"]["cost_usd"] == pytest.approx(usage["cost_usd"])


def test_retry_rejects_asks_rejected_slots_again_with_new_seeds(
    few_prompts_run: Path, tiny_vllm_server: VLLMServer
) -> None:
    # The random tiny model never writes <think>…</think>: in tagged mode its outputs fail to parse.
    raw = tiny_generation([], output_mode="tagged", teacher={"concurrency": 6, "parse_retries": 0})
    with FaultProxy(tiny_vllm_server.base_url) as proxy:
        raw["teacher"]["base_urls"] = [proxy.base_url]
        first = generate_in_run(few_prompts_run, GenerateConfig.model_validate(raw))
        _, rejects = _slot_ids(few_prompts_run)
        assert first.rejected == len(rejects) >= 3
        assert all(r.reasons == ["parse_failed"] and len(r.raw["outputs"]) == 1 for r in rejects)
        first_seeds = {b["seed"] for b in proxy.bodies}
        sent = len(proxy.bodies)

        # A plain re-run skips rejected slots: nothing is sent.
        again = generate_in_run(few_prompts_run, GenerateConfig.model_validate(raw))
        assert again.already_done == 6 and len(proxy.bodies) == sent

        # --retry-rejects re-asks each rejected slot once, with a seed not tried before (the same seed
        # would give the same unparseable text, or be served the cached failure without asking at all).
        retried = GenerateConfig.model_validate({**raw, "retry_rejects": True})
        third = generate_in_run(few_prompts_run, retried)
        asked = proxy.bodies[sent:]
        assert len(asked) == len(rejects) == third.generated + third.rejected
        assert not first_seeds & {b["seed"] for b in asked}
    samples, rejects_after = _slot_ids(few_prompts_run)
    assert len(samples) + len(rejects_after) == 6
    assert all(len(r.raw["outputs"]) == 1 for r in rejects_after)


def test_refresh_resends_everything_and_no_cache_writes_no_cache_file(
    few_prompts_run: Path, tiny_vllm_server: VLLMServer
) -> None:
    with FaultProxy(tiny_vllm_server.base_url) as proxy:
        raw = tiny_generation([proxy.base_url], teacher={"concurrency": 6})
        first = generate_in_run(few_prompts_run, GenerateConfig.model_validate(raw))
        sent = len(proxy.bodies)
        assert first.planned == 6 and sent >= 6 and first.cached == 0

        cached_run = _copy_run(few_prompts_run, "cached", with_cache=True)
        cached = generate_in_run(cached_run, GenerateConfig.model_validate(raw))
        assert len(proxy.bodies) == sent and cached.cached == first.generated

        refreshed_run = _copy_run(few_prompts_run, "refreshed", with_cache=True)
        refreshed = generate_in_run(refreshed_run, GenerateConfig.model_validate({**raw, "refresh": True}))
        assert refreshed.cached == 0 and len(proxy.bodies) >= sent + 6
        assert all(not s.cached for s in _slot_ids(refreshed_run)[0])
        sent = len(proxy.bodies)

        uncached_run = _copy_run(few_prompts_run, "uncached", with_cache=False)
        uncached = generate_in_run(uncached_run, GenerateConfig.model_validate({**raw, "use_cache": False}))
        assert uncached.cached == 0 and len(proxy.bodies) >= sent + 6
        assert not (uncached_run / RunFiles.CACHE).exists()
        # Paid for all the same: every response the server sent is in the usage ledger, cache or no cache.
        from cotforge.llm.pricing import read_ledger

        assert len(read_ledger(uncached_run / RunFiles.USAGE)) == len(proxy.bodies) - sent
        sent = len(proxy.bodies)
        # A second --no-cache run has nothing to re-serve, but resume still skips the written slots.
        again = generate_in_run(uncached_run, GenerateConfig.model_validate({**raw, "use_cache": False}))
        assert again.already_done == 6 and len(proxy.bodies) == sent

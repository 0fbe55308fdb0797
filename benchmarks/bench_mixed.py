"""Mixed long/short prompts against the CPU vLLM server: short requests must not starve (target failed: 0).

Starts SmolLM2-135M-Instruct on the CPU vLLM server (``max_model_len`` 2048, 32 sequences), builds prompts
from the bundled prompt files whose lengths run log-spaced from 12 to 8,000 characters (shuffled, so long
prefills and short questions interleave), and obtains them at concurrency 32 twice through cotforge's engine:

- ``fixed``: concurrency fixed at 32 and a request failed at ``timeout_s`` (cancelled and re-sent), as before;
- ``adaptive``: AIMD concurrency per replica, and a request that outlives ``timeout_s`` on a live server stays
  queued instead of being re-sent.

Both share the prompt-length check, so prompts that cannot fit 2048 tokens are ``prompt_too_long`` (not sent,
not failed) in both. ``timeout_s`` is scaled down from the 120 s default (``BENCH_MIXED_TIMEOUT``, 20 s) so
the run takes minutes, not an hour; that is the same pressure at a smaller size. Prints per arm the requests
answered, failed and too long, and last ``failed: N`` (adaptive) and ``ratio: X`` (answered per second,
adaptive / fixed).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cotforge.ingest.sources import bundled_prompt_files
from cotforge.llm import ChatRequest, LLMConfig, RequestEngine, RequestOutcome
from cotforge.models.embedded import resolve_model
from cotforge.schemas import SamplingParams
from cotforge.serving.vllm_server import VLLMServer

N = int(os.environ.get("BENCH_MIXED_PROMPTS", "64"))
CONCURRENCY = 32
TIMEOUT_S = float(os.environ.get("BENCH_MIXED_TIMEOUT", "20"))
MAX_TOKENS = 16


def mixed_prompts(n: int) -> list[str]:
    """``n`` prompts of real text, lengths log-spaced from 12 to 8,000 characters, in a shuffled order."""
    texts = [
        json.loads(line)["prompt"]
        for path in bundled_prompt_files()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rng = random.Random(0)
    rng.shuffle(texts)
    pool = " ".join(texts)
    prompts = []
    for i in range(n):
        length = int(12 * (8000 / 12) ** (i / (n - 1)))
        start = rng.randrange(0, max(1, len(pool) - length))
        prompts.append(pool[start : start + length])
    rng.shuffle(prompts)
    return prompts


def run_arm(url: str, prompts: list[str], adaptive: bool) -> tuple[float, dict[str, int], list[float]]:
    config = LLMConfig(
        model="smollm2",
        base_urls=[url],
        concurrency=CONCURRENCY,
        timeout_s=TIMEOUT_S,
        queue_wait_s=1800.0 if adaptive else 0.0,
        adaptive_concurrency=adaptive,
        max_retries=2,
        parse_retries=0,
    )
    sampling = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, seed=1)
    requests = [
        ChatRequest(f"p{i}", [{"role": "user", "content": p}], sampling) for i, p in enumerate(prompts)
    ]
    outcomes: list[RequestOutcome[str]] = []
    t0 = time.perf_counter()
    stats = RequestEngine(config, progress=False).run(requests, lambda r, text: text, outcomes.append)
    wall = time.perf_counter() - t0
    counts = {"answered": 0, "failed": 0, "prompt_too_long": 0, "sent": stats.sent}
    failed_lengths = []
    for o in outcomes:
        if o.ok:
            counts["answered"] += 1
        elif o.reason == "prompt_too_long":
            counts["prompt_too_long"] += 1
        else:
            counts["failed"] += 1
            failed_lengths.append(len(o.request.messages[0]["content"]))
    return wall, counts, failed_lengths


def main() -> None:
    prompts = mixed_prompts(N)
    lengths = sorted(len(p) for p in prompts)
    print(
        f"{N} prompts, {lengths[0]}–{lengths[-1]} characters (median {lengths[N // 2]}), concurrency "
        f"{CONCURRENCY}, timeout window {TIMEOUT_S:g} s, max_tokens {MAX_TOKENS}",
        flush=True,
    )
    rates = {}
    failed = {}
    with VLLMServer(
        str(resolve_model("smollm2")),
        served_model_name="smollm2",
        max_model_len=2048,
        max_num_seqs=CONCURRENCY,
        startup_timeout_s=900,  # a shared 2-core machine can take minutes to bring vLLM up
    ) as server:
        # Warm-up: first requests pay one-off costs (tokenizer, chat template, the probes' connections).
        run_arm(server.base_url, prompts[:4], adaptive=True)
        for name, adaptive in (("fixed", False), ("adaptive", True)):
            wall, counts, failed_lengths = run_arm(server.base_url, prompts, adaptive)
            rates[name] = counts["answered"] / wall
            failed[name] = counts["failed"]
            median_failed = sorted(failed_lengths)[len(failed_lengths) // 2] if failed_lengths else 0
            print(
                f"{name}: {counts['answered']} answered, {counts['failed']} failed (median length "
                f"{median_failed}), {counts['prompt_too_long']} prompt_too_long, {counts['sent']} sent, "
                f"{wall:.1f} s, {rates[name]:.2f} answered/s",
                flush=True,
            )
    print(f"failed: {failed['adaptive']}")
    # A fixed arm that answered nothing at all has no rate to divide by: the fix is then infinitely better.
    ratio = rates["adaptive"] / rates["fixed"] if rates["fixed"] else float("inf")
    print(f"ratio: {ratio:.3f}")


if __name__ == "__main__":
    sys.exit(main())

"""`cotforge generate` vs a bare `AsyncOpenAI` loop, same requests, same concurrency (target ratio ≥ 0.97).

Starts the tiny-model vLLM server, plans 256 structured-mode requests with cotforge's own planner, then times,
alternating rounds: (a) the bare loop — `AsyncOpenAI` + `asyncio.Semaphore(32)`, the same messages, sampling
and `response_format`; (b) `generate_in_run` into a fresh run folder with the cache off (planning, engine,
parsing, `Sample` records, append-only writes, manifest). Medians of several rounds; which of the two goes
first alternates from round to round. Then a fully cached re-run: 5,120 slots whose responses are already in
a copied cache (target ≥ 5,000 samples/s).
Last line printed: `ratio: X` (cotforge / bare).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cotforge.generation.generate import generate_in_run
from cotforge.generation.requests import GenerateConfig, plan_samples
from cotforge.ingest import IngestConfig, ingest_into_run
from cotforge.llm.cache import CachedResponse, RequestCache
from cotforge.llm.engine import RequestEngine
from cotforge.models.tiny import build_tiny_model
from cotforge.runfolder import RunFiles
from cotforge.schemas import TokenUsage
from cotforge.serving import VLLMServer
from cotforge.sources import bundled_prompt_files
from cotforge.templates import PromptTemplates

N_PROMPTS = int(os.environ.get("BENCH_GENERATE_PROMPTS", "256"))
CONCURRENCY = 32
ROUNDS = int(os.environ.get("BENCH_GENERATE_ROUNDS", "5"))
CACHED_SAMPLES_PER_PROMPT = 20


def config_for(url: str, n: int = 1, use_cache: bool = False) -> GenerateConfig:
    return GenerateConfig.model_validate(
        {
            "teacher": {
                "model": "tiny",
                "base_urls": [url],
                "concurrency": CONCURRENCY,
                "sampling": {"temperature": 0.7, "max_tokens": 96},
                "parse_retries": 0,
            },
            "bounds": {"min_steps": 2, "max_steps": 3, "max_step_chars": 24, "max_answer_chars": 48},
            "samples_per_prompt": n,
            "use_cache": use_cache,
            "progress": False,
        }
    )


async def bare_loop(url: str, config: GenerateConfig, prompts_run: Path) -> tuple[int, int]:
    from openai import AsyncOpenAI

    from cotforge.runfolder import RunFolder
    from cotforge.schemas import PromptRecord

    prompts = RunFolder(prompts_run).read(RunFiles.PROMPTS, PromptRecord)
    plans = plan_samples(prompts, config, PromptTemplates())
    client = AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(request) -> int:  # type: ignore[no-untyped-def]
        async with gate:
            s = request.sampling
            response = await client.chat.completions.create(
                model="tiny",
                messages=request.messages,
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=s.max_tokens,
                seed=s.seed,
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.schema_name,
                        "schema": request.json_schema,
                        "strict": True,
                    },
                },
            )
            assert response.choices[0].message.content is not None
            return response.usage.completion_tokens if response.usage else 0

    tokens = await asyncio.gather(*(one(p.request) for p in plans))
    await client.close()
    return len(tokens), sum(tokens)


# Client CPU seconds of each timed run (this process only; the server is another process): a measure of the
# client's own overhead that the server's noise on a shared machine does not blur.
CLIENT_CPU: dict[str, list[float]] = {"bare": [], "cotforge": []}
# Completion tokens of each timed run: the two must have done the same work for the ratio to mean anything.
COMPLETION_TOKENS: dict[str, list[int]] = {"bare": [], "cotforge": []}


def time_cotforge(url: str, prompts_run: Path, scratch: Path, round_no: int) -> float:
    run = scratch / f"cotforge-{round_no}"
    run.mkdir()
    shutil.copy(prompts_run / RunFiles.PROMPTS, run / RunFiles.PROMPTS)
    t0, c0 = time.perf_counter(), time.process_time()
    result = generate_in_run(run, config_for(url), validate=False)
    elapsed = time.perf_counter() - t0
    CLIENT_CPU["cotforge"].append(time.process_time() - c0)
    COMPLETION_TOKENS["cotforge"].append(int(result.usage["completion_tokens"]))
    assert result.generated + result.rejected == result.planned == N_PROMPTS
    return N_PROMPTS / elapsed


def time_bare(url: str, prompts_run: Path) -> float:
    t0, c0 = time.perf_counter(), time.process_time()
    done, tokens = asyncio.run(bare_loop(url, config_for(url), prompts_run))
    elapsed = time.perf_counter() - t0
    CLIENT_CPU["bare"].append(time.process_time() - c0)
    COMPLETION_TOKENS["bare"].append(tokens)
    assert done == N_PROMPTS
    return N_PROMPTS / elapsed


def cached_rate(prompts_run: Path, scratch: Path) -> float:
    """Fill a cache with a valid response for every slot of n=20 per prompt, then time a re-run on it."""
    config = config_for("http://127.0.0.1:1/v1", n=CACHED_SAMPLES_PER_PROMPT, use_cache=True)
    seed_run = scratch / "cache-seed"
    seed_run.mkdir()
    from cotforge.runfolder import RunFolder
    from cotforge.schemas import PromptRecord

    prompts = RunFolder(prompts_run).read(RunFiles.PROMPTS, PromptRecord)
    plans = plan_samples(prompts, config, PromptTemplates())
    engine = RequestEngine(config.teacher, progress=False)
    cache = RequestCache(seed_run / RunFiles.CACHE)
    text = json.dumps(
        {"reasoning_steps": ["The user asks something.", "I answer it."], "answer": "An answer."}
    )
    usage = TokenUsage(prompt_tokens=120, completion_tokens=30)
    for plan in plans:
        cache.put(
            engine.key_of(plan.request, plan.request.sampling), "tiny", CachedResponse(text, usage, "stop")
        )
    cache.close()
    run = scratch / "cached"
    run.mkdir()
    shutil.copy(prompts_run / RunFiles.PROMPTS, run / RunFiles.PROMPTS)
    shutil.copy(seed_run / RunFiles.CACHE, run / RunFiles.CACHE)
    t0 = time.perf_counter()
    result = generate_in_run(run, config, validate=False)
    elapsed = time.perf_counter() - t0
    assert result.cached == result.planned == len(plans), result
    return len(plans) / elapsed


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="cotforge-bench-generate-"))
    prompts_run = scratch / "prompts"
    ingest_into_run(prompts_run, [str(p) for p in bundled_prompt_files()], IngestConfig())
    lines = (prompts_run / RunFiles.PROMPTS).read_text(encoding="utf-8").split("\n")
    (prompts_run / RunFiles.PROMPTS).write_text("\n".join(lines[:N_PROMPTS]) + "\n", encoding="utf-8")
    print(f"{N_PROMPTS} prompts, concurrency {CONCURRENCY}, {ROUNDS} alternating rounds", flush=True)
    with VLLMServer(str(build_tiny_model()), served_model_name="tiny", max_num_seqs=CONCURRENCY) as server:
        # Warm-up, one of each (compiles grammars, fills the prefix cache, imports).
        time_bare(server.base_url, prompts_run)
        time_cotforge(server.base_url, prompts_run, scratch, -1)
        bare, ours = [], []
        for i in range(ROUNDS):
            # Swap which goes first each round: a drift in the machine's load then hits both alike.
            if i % 2 == 0:
                bare.append(time_bare(server.base_url, prompts_run))
                ours.append(time_cotforge(server.base_url, prompts_run, scratch, i))
            else:
                ours.append(time_cotforge(server.base_url, prompts_run, scratch, i))
                bare.append(time_bare(server.base_url, prompts_run))
            print(
                f"round {i + 1}: bare {bare[-1]:.1f}/s  cotforge {ours[-1]:.1f}/s  (completion tokens: "
                f"bare {COMPLETION_TOKENS['bare'][-1]}, cotforge {COMPLETION_TOKENS['cotforge'][-1]})",
                flush=True,
            )
    rate = cached_rate(prompts_run, scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    b, c = statistics.median(bare), statistics.median(ours)
    print(f"bare AsyncOpenAI: {b:.1f} samples/s (median)")
    print(f"cotforge generate: {c:.1f} samples/s (median)")
    cpu = {k: 1000 * statistics.median(v[1:]) / N_PROMPTS for k, v in CLIENT_CPU.items()}  # v[0]: warm-up
    print(f"client CPU per sample (median): bare {cpu['bare']:.2f} ms, cotforge {cpu['cotforge']:.2f} ms")
    print(f"cached re-run: {rate:.0f} samples/s (target ≥ 5000)")
    print(f"ratio: {c / b:.3f}")


if __name__ == "__main__":
    sys.exit(main())

"""`cotforge generate` vs a bare `AsyncOpenAI` loop, same requests, same concurrency (target ratio ≥ 0.97).

Two measurements, each in ABBA order (bare, cotforge, cotforge, bare, …: a drift in the machine's load hits
both sides alike):

1. On fixed-latency endpoints (``fleet_endpoints.py``: 4 processes × 8 slots answering in
   0.25 s, a valid rationale each time), so the server adds no noise and the difference is cotforge's own
   cost: (a) the bare loop — `AsyncOpenAI` + `asyncio.Semaphore(32)`, the same messages, sampling and
   `response_format`, round-robin over the endpoints; (b) `generate_in_run` into a fresh run folder with the
   cache off (planning, engine, parsing, `Sample` records, append-only writes, manifest). Median of the
   per-round ratios, with their spread.
2. End to end on the tiny-model CPU vLLM server: same two sides, the path a user runs. The server swings from
   round to round on a shared machine, so each round's ratio is printed with both sides' completion tokens.

Then a fully cached re-run: 5,120 slots whose responses are already in a copied cache (target ≥ 5,000
samples/s). Last line printed: `ratio: X`, the *worse* of the two medians (so a regression on a real server
cannot hide behind the synthetic endpoints); with ``BENCH_GENERATE_ROUNDS=0`` only the endpoints are measured
and the line says so.
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
from cotforge.ingest.rows import IngestConfig
from cotforge.ingest.run import ingest_into_run
from cotforge.llm.cache import CachedResponse, RequestCache
from cotforge.llm.engine import RequestEngine
from cotforge.models.tiny import build_tiny_model
from cotforge.runfolder import RunFiles
from cotforge.schemas import TokenUsage
from cotforge.serving.vllm_server import VLLMServer
from cotforge.templates import PromptTemplates

N_PROMPTS = int(os.environ.get("BENCH_GENERATE_PROMPTS", "256"))
CONCURRENCY = 32
ROUNDS = int(os.environ.get("BENCH_GENERATE_ROUNDS", "4"))
FLEET_ROUNDS = int(os.environ.get("BENCH_GENERATE_FLEET_ROUNDS", "8"))
CACHED_SAMPLES_PER_PROMPT = 20


def config_for(url: str | list[str], n: int = 1, use_cache: bool = False) -> GenerateConfig:
    return GenerateConfig.model_validate(
        {
            "teacher": {
                "model": "tiny",
                "base_urls": [url] if isinstance(url, str) else url,
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


async def bare_loop(urls: list[str], config: GenerateConfig, prompts_run: Path) -> tuple[int, int]:
    from openai import AsyncOpenAI

    from cotforge.runfolder import RunFolder
    from cotforge.schemas import PromptRecord

    prompts = RunFolder(prompts_run).read(RunFiles.PROMPTS, PromptRecord)
    plans = plan_samples(prompts, config, PromptTemplates())
    clients = [AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0) for url in urls]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int, request) -> int:  # type: ignore[no-untyped-def]
        async with gate:
            s = request.sampling
            response = await clients[i % len(clients)].chat.completions.create(
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

    tokens = await asyncio.gather(*(one(i, p.request) for i, p in enumerate(plans)))
    for client in clients:
        await client.close()
    return len(tokens), sum(tokens)


# Client CPU seconds of each timed run (this process only; the server is another process): a measure of the
# client's own overhead that the server's noise on a shared machine does not blur.
CLIENT_CPU: dict[str, list[float]] = {"bare": [], "cotforge": []}
# Completion tokens of each timed run: the two must have done the same work for the ratio to mean anything.
COMPLETION_TOKENS: dict[str, list[int]] = {"bare": [], "cotforge": []}


def time_cotforge(url: str | list[str], prompts_run: Path, scratch: Path, round_no: int | str) -> float:
    run = scratch / f"cotforge-{round_no}"
    run.mkdir()
    shutil.copy(prompts_run / RunFiles.PROMPTS, run / RunFiles.PROMPTS)
    t0, c0 = time.perf_counter(), time.process_time()
    result = generate_in_run(run, config_for(url))
    elapsed = time.perf_counter() - t0
    CLIENT_CPU["cotforge"].append(time.process_time() - c0)
    COMPLETION_TOKENS["cotforge"].append(int(result.usage["completion_tokens"]))
    assert result.generated + result.rejected == result.planned == N_PROMPTS
    return N_PROMPTS / elapsed


def time_bare(url: str | list[str], prompts_run: Path) -> float:
    urls = [url] if isinstance(url, str) else url
    t0, c0 = time.perf_counter(), time.process_time()
    done, tokens = asyncio.run(bare_loop(urls, config_for(urls), prompts_run))
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
    result = generate_in_run(run, config)
    elapsed = time.perf_counter() - t0
    assert result.cached == result.planned == len(plans), result
    return len(plans) / elapsed


def abba(url: str | list[str], prompts_run: Path, scratch: Path, rounds: int, tag: str) -> list[float]:
    """Per-round ratios cotforge / bare; the order flips each round (A B, B A, …)."""
    time_bare(url, prompts_run)  # warm-up, one of each (grammars, prefix cache, imports, connections)
    time_cotforge(url, prompts_run, scratch, f"{tag}-warm")
    ratios = []
    for i in range(rounds):
        if i % 2 == 0:
            bare = time_bare(url, prompts_run)
            ours = time_cotforge(url, prompts_run, scratch, f"{tag}-{i}")
        else:
            ours = time_cotforge(url, prompts_run, scratch, f"{tag}-{i}")
            bare = time_bare(url, prompts_run)
        ratios.append(ours / bare)
        print(
            f"{tag} round {i + 1}: bare {bare:.1f}/s  cotforge {ours:.1f}/s  ratio {ratios[-1]:.3f}  (completion "
            f"tokens: bare {COMPLETION_TOKENS['bare'][-1]}, cotforge {COMPLETION_TOKENS['cotforge'][-1]})",
            flush=True,
        )
    return ratios


def main() -> None:
    from fleet_endpoints import Fleet

    scratch = Path(tempfile.mkdtemp(prefix="cotforge-bench-generate-"))
    prompts_run = scratch / "prompts"
    ingest_into_run(prompts_run, IngestConfig(bundled=True))
    lines = (prompts_run / RunFiles.PROMPTS).read_text(encoding="utf-8").split("\n")
    (prompts_run / RunFiles.PROMPTS).write_text("\n".join(lines[:N_PROMPTS]) + "\n", encoding="utf-8")
    print(f"{N_PROMPTS} prompts, concurrency {CONCURRENCY}", flush=True)
    e2e = [float("nan")]
    if ROUNDS:  # BENCH_GENERATE_ROUNDS=0 skips the end-to-end check (the headline alone)
        with VLLMServer(
            str(build_tiny_model()), served_model_name="tiny", max_num_seqs=CONCURRENCY
        ) as server:
            e2e = abba(server.base_url, prompts_run, scratch, ROUNDS, "vllm")
    for side in CLIENT_CPU:
        CLIENT_CPU[side].clear()
    with Fleet(k=4, slots=CONCURRENCY // 4, latency=0.25, model="tiny") as fleet:
        print(
            f"fixed-latency endpoints: 4 × {CONCURRENCY // 4} slots, 0.25 s (ideal {fleet.ideal_rate:.0f}/s)"
        )
        headline = abba(fleet.urls, prompts_run, scratch, FLEET_ROUNDS, "fleet")
    rate = cached_rate(prompts_run, scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"end-to-end on the CPU vLLM server: ratio {statistics.median(e2e):.3f} (rounds {min(e2e):.3f}–{max(e2e):.3f})"
    )
    cpu = {k: 1000 * statistics.median(v[1:]) / N_PROMPTS for k, v in CLIENT_CPU.items()}  # v[0]: warm-up
    print(
        f"client CPU per sample on the endpoints (median): bare {cpu['bare']:.2f} ms, cotforge {cpu['cotforge']:.2f} ms"
    )
    print(f"cached re-run: {rate:.0f} samples/s (target ≥ 5000)")
    fleet_ratio = statistics.median(headline)
    print(
        f"fixed-latency endpoints: ratio {fleet_ratio:.3f} (rounds {min(headline):.3f}–{max(headline):.3f})"
    )
    if not ROUNDS:
        print(f"ratio: {fleet_ratio:.3f} (fixed-latency endpoints only: the vLLM server was not measured)")
        return
    print(f"ratio: {min(fleet_ratio, statistics.median(e2e)):.3f}")


if __name__ == "__main__":
    sys.exit(main())

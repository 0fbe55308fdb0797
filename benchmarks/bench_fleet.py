"""One cotforge process driving a fleet of fixed-latency OpenAI-compatible endpoints (target ratio ≥ 0.95).

K endpoint processes (``fleet_endpoints.py``) each serve ``SLOTS`` requests at once and answer after
``LATENCY`` seconds, so the fleet's ideal throughput is ``K × SLOTS / LATENCY`` with ``K × SLOTS`` requests in
flight. The defaults (16 × 64 slots, 4 s: 1,024 in flight, 256 requests/s) keep the ideal inside what one
client process manages on a 2-core machine (a bare ``AsyncOpenAI`` loop peaks near 400–470 requests/s here);
a 0.5 s latency at 1,024 in flight would ask for 2,048 requests/s and measure the machine, not cotforge.

Rounds alternate ABBA between cotforge's ``RequestEngine`` and a bare ``AsyncOpenAI`` loop (same requests,
same concurrency, round-robin over the same endpoints). Then the peers, each in its own scratch venv under
``~/.cache/cotforge/bench-peers`` (installed from PyPI on first use; skipped with the reason if that fails):
bespokelabs-curator 0.1.31 and distilabel 1.5.3. Peers take one base URL, so the peer comparison runs every
client against one endpoint with ``K × SLOTS`` slots.

Prints throughput, client CPU per request, ``peer_ratio: X`` (cotforge / best peer) and last ``ratio: X``
(cotforge / ideal).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from fleet_endpoints import Fleet

from cotforge.llm import ChatRequest, LLMConfig, RequestEngine
from cotforge.schemas import SamplingParams

K = int(os.environ.get("BENCH_FLEET_K", "16"))
SLOTS = int(os.environ.get("BENCH_FLEET_SLOTS", "64"))
LATENCY = float(os.environ.get("BENCH_FLEET_LATENCY", "4.0"))
WAVES = int(os.environ.get("BENCH_FLEET_WAVES", "4"))  # requests per run = WAVES × K × SLOTS
ROUNDS = int(os.environ.get("BENCH_FLEET_ROUNDS", "2"))
SELECTED_PEERS = [p for p in os.environ.get("BENCH_FLEET_PEERS", "curator,distilabel").split(",") if p]
PEERS_DIR = Path.home() / ".cache" / "cotforge" / "bench-peers"
MODEL = "fleet"


def plan(n: int) -> list[ChatRequest]:
    sampling = SamplingParams(temperature=0.7, max_tokens=32, seed=0)
    return [
        ChatRequest(f"q{i}", [{"role": "user", "content": f"Question {i}: why is the sky blue?"}], sampling)
        for i in range(n)
    ]


def time_cotforge(urls: list[str], requests: list[ChatRequest], concurrency: int) -> tuple[float, float]:
    """Seconds and client CPU seconds for cotforge's engine to obtain every request (cache off)."""
    config = LLMConfig(model=MODEL, base_urls=urls, concurrency=concurrency, timeout_s=600, parse_retries=0)
    done: list[bool] = []
    t0, c0 = time.perf_counter(), time.process_time()
    RequestEngine(config, progress=False).run(requests, lambda r, text: text, lambda o: done.append(o.ok))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(done) == len(requests) and all(done), f"{done.count(False)} failed"
    return wall, cpu


async def _bare(urls: list[str], requests: list[ChatRequest], concurrency: int) -> int:
    from openai import AsyncOpenAI

    clients = [AsyncOpenAI(base_url=u, api_key="EMPTY", max_retries=0, timeout=600) for u in urls]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, request: ChatRequest) -> bool:
        async with gate:
            s = request.sampling
            response = await clients[i % len(clients)].chat.completions.create(
                model=MODEL,
                messages=request.messages,  # type: ignore[arg-type]
                temperature=s.temperature,
                max_tokens=s.max_tokens,
                seed=s.seed,
            )
            return response.choices[0].message.content is not None

    ok = await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    for client in clients:
        await client.close()
    return sum(ok)


def time_bare(urls: list[str], requests: list[ChatRequest], concurrency: int) -> tuple[float, float]:
    """Seconds and client CPU seconds for a bare ``AsyncOpenAI`` + semaphore loop over the same requests."""
    t0, c0 = time.perf_counter(), time.process_time()
    ok = asyncio.run(_bare(urls, requests, concurrency))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert ok == len(requests)
    return wall, cpu


def abba(
    urls: list[str], requests: list[ChatRequest], concurrency: int, rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """``rounds`` pairs of runs, order A B, B A, …: a drift in the machine's load hits both sides alike."""
    runs: dict[str, list[tuple[float, float]]] = {"cotforge": [], "bare": []}
    for i in range(rounds):
        order = ("cotforge", "bare") if i % 2 == 0 else ("bare", "cotforge")
        for side in order:
            timer = time_cotforge if side == "cotforge" else time_bare
            runs[side].append(timer(urls, requests, concurrency))
    return runs


# --- peers ----------------------------------------------------------------------------------------------------

PEERS = {
    "curator": ["bespokelabs-curator==0.1.31"],
    "distilabel": ["distilabel[openai]==1.5.3", "requests"],
}

PEER_SCRIPT = {
    "curator": """
        from bespokelabs import curator
        class Gen(curator.LLM):
            def prompt(self, row): return row["prompt"]
            def parse(self, row, response): return {"response": response}
        llm = Gen(model_name=MODEL, backend="openai",
                  generation_params={"temperature": 0.7, "max_tokens": 32, "seed": 0},
                  backend_params={"base_url": URL, "api_key": "EMPTY", "max_concurrent_requests": C,
                                  "max_requests_per_minute": 10**8, "max_tokens_per_minute": 10**11,
                                  "request_timeout": 600})
        llm([{"prompt": "warm-up"}])
        t0, c0 = time.perf_counter(), cpu()
        out = llm([{"prompt": p} for p in PROMPTS])
        done = len(out.dataset) if hasattr(out, "dataset") else len(out)
    """,
    "distilabel": """
        from distilabel.models.llms import OpenAILLM
        from distilabel.pipeline import Pipeline
        from distilabel.steps import LoadDataFromDicts
        from distilabel.steps.tasks import TextGeneration
        with Pipeline(name="bench-fleet") as pipeline:
            load = LoadDataFromDicts(data=[{"instruction": p} for p in PROMPTS], batch_size=C)
            gen = TextGeneration(llm=OpenAILLM(model=MODEL, base_url=URL, api_key="EMPTY", timeout=600,
                                               generation_kwargs={"temperature": 0.7, "max_new_tokens": 32}),
                                 input_batch_size=C)
            load >> gen
        t0, c0 = time.perf_counter(), cpu()
        out = pipeline.run(use_cache=False)
        done = len(out["default"]["train"])
    """,
}


def peer_python(name: str) -> tuple[Path | None, str]:
    """The peer's venv python, installing it on first use; ``(None, reason)`` when it cannot be had."""
    venv = PEERS_DIR / name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python, ""
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *PEERS[name]],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return None, f"{' '.join(step[-len(PEERS[name]) :])}: {(result.stderr or result.stdout)[-300:]}"
    marker.touch()
    return python, ""


def peer_env(python: Path, scratch: Path) -> dict[str, str]:
    env = dict(os.environ, TELEMETRY_ENABLED="false", LITELLM_LOCAL_MODEL_COST_MAP="True")
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CURATOR_CACHE_DIR=str(scratch / "curator-cache"))
    env.update(DISTILABEL_CACHE_DIR=str(scratch / "distilabel-cache"), PYTHONPATH="")
    site = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True
    ).stdout.strip()
    tokenizers = Path(site) / "litellm" / "litellm_core_utils" / "tokenizers"
    if tokenizers.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(tokenizers)  # else tiktoken downloads cl100k_base
    return env


def time_peer(name: str, url: str, prompts: list[str], concurrency: int) -> tuple[float, float, int] | str:
    """``(seconds, client CPU seconds, done)`` for a peer, or the reason it could not run."""
    python, reason = peer_python(name)
    if python is None:
        return f"not installed ({reason})"
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        scratch = Path(tmp)
        header = f"import json, resource, time\nMODEL, URL, C = {MODEL!r}, {url!r}, {concurrency}\n"
        # Client CPU includes the peer's worker processes (distilabel runs each step in its own process).
        header += "def cpu():\n    r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        header += "    return time.process_time() + r.ru_utime + r.ru_stime\n"
        header += f"PROMPTS = json.load(open({str(scratch / 'prompts.json')!r}))\n"
        footer = "\nprint('RESULT', json.dumps([time.perf_counter() - t0, cpu() - c0, done]))\n"
        (scratch / "prompts.json").write_text(json.dumps(prompts))
        script = scratch / "peer.py"
        script.write_text(header + textwrap.dedent(PEER_SCRIPT[name]) + footer)
        result = subprocess.run(
            [str(python), str(script)],
            capture_output=True,
            text=True,
            env=peer_env(python, scratch),
            cwd=scratch,
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        return f"failed (exit {result.returncode}): {(result.stderr or result.stdout)[-400:]}"
    wall, cpu, done = json.loads(lines[-1][len("RESULT ") :])
    return float(wall), float(cpu), int(done)


def main() -> None:
    in_flight = K * SLOTS
    n = WAVES * in_flight
    requests = plan(n)
    with Fleet(k=K, slots=SLOTS, latency=LATENCY) as fleet:
        ideal = fleet.ideal_rate
        print(
            f"fleet: {K} endpoints × {SLOTS} slots, {LATENCY:g} s each → ideal {ideal:.0f} req/s", flush=True
        )
        print(f"{n} requests, {in_flight} in flight, {ROUNDS} ABBA rounds", flush=True)
        time_cotforge(fleet.urls, plan(in_flight), in_flight)  # warm-up: imports, connections
        runs = abba(fleet.urls, requests, in_flight, ROUNDS)
    rates = {side: [n / wall for wall, _ in r] for side, r in runs.items()}
    cpu_ms = {side: 1000 * statistics.median(cpu for _, cpu in r) / n for side, r in runs.items()}
    for side in ("bare", "cotforge"):
        spread = f"{min(rates[side]):.1f}–{max(rates[side]):.1f}"
        print(
            f"{side}: {statistics.median(rates[side]):.1f} req/s (rounds {spread}), "
            f"client CPU {cpu_ms[side]:.2f} ms/request",
            flush=True,
        )
    ours = statistics.median(rates["cotforge"])
    print(f"cotforge / bare: {ours / statistics.median(rates['bare']):.3f}")

    prompts = [r.messages[0]["content"] for r in requests]
    with Fleet(k=1, slots=in_flight, latency=LATENCY) as single:
        print(f"peers: one endpoint × {in_flight} slots, {LATENCY:g} s, same {n} requests", flush=True)
        wall, cpu = time_cotforge(single.urls, requests, in_flight)
        single_rate = n / wall
        print(f"cotforge (one endpoint): {single_rate:.1f} req/s, client CPU {1000 * cpu / n:.2f} ms/request")
        best = 0.0
        for name in SELECTED_PEERS:
            result = time_peer(name, single.urls[0], prompts, in_flight)
            if isinstance(result, str):
                print(f"{name}: skipped: {result}", flush=True)
                continue
            wall, cpu, done = result
            rate = done / wall
            best = max(best, rate)
            print(
                f"{name}: {rate:.1f} req/s ({done}/{n} done), client CPU {1000 * cpu / max(done, 1):.2f} ms/request"
            )
    if best:
        print(f"peer_ratio: {single_rate / best:.3f}")
    print(f"ratio: {ours / ideal:.3f}")


if __name__ == "__main__":
    sys.exit(main())

"""Past one client process: cotforge's local and Ray executors against a fleet of fixed-latency endpoints whose
ideal is well above what one process can drive (goal: Ray executor / ideal ≥ 0.9, and above one process).

1. ``single_process_req_s``: what one client process reaches on this machine — the faster of a bare
   ``AsyncOpenAI`` loop and cotforge's local executor, 512 in flight, against endpoints whose ideal (10,240
   requests/s) no client here can approach.
2. The fleet (``fleet_endpoints.py``): K endpoint processes × SLOTS slots (defaults 16 × 64: 1,024 in flight),
   the latency chosen so the ideal ``K × SLOTS / latency`` is ``HEADROOM`` (default 2) × ``single_process_req_s``.
3. Side by side on the same WAVES × K × SLOTS requests, rounds rotating the order: the local executor
   (``RequestEngine``), the Ray executor (``executor: ray``, RAY_WORKERS HTTP workers on a local Ray cluster
   started once, before the rounds; each run's actor pool start is timed, as a stage pays it) and a bare
   ``AsyncOpenAI`` + semaphore loop. Client CPU: this process for the one-process sides; for the Ray executor,
   this process and every process it started except the endpoints (the cluster's raylet, GCS and workers).
4. The peers on one endpoint × 1,024 slots (``fleet_peers.py``): cotforge's local executor, curator and
   distilabel; ``peer_ratio`` = cotforge / best peer.
5. Ray Data's own ``HttpRequestProcessorConfig`` (two actors, batch 16) beside the Ray executor (two workers)
   on one 50 ms endpoint, 256 requests.

Prints ``single_process_req_s``, each side's ratio to the ideal, and last ``ratio: X`` (Ray executor / ideal).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import threading
import time

import psutil
from fleet_endpoints import Fleet
from fleet_peers import MODEL, time_peer

from cotforge.llm import ChatRequest, LLMConfig, RequestEngine
from cotforge.schemas import SamplingParams

K = int(os.environ.get("BENCH_FLEET_K", "16"))
SLOTS = int(os.environ.get("BENCH_FLEET_SLOTS", "64"))
HEADROOM = float(os.environ.get("BENCH_FLEET_HEADROOM", "2"))
WAVES = int(os.environ.get("BENCH_FLEET_WAVES", "8"))  # requests per run = WAVES × K × SLOTS
ROUNDS = int(os.environ.get("BENCH_FLEET_ROUNDS", "2"))
RAY_WORKERS = int(os.environ.get("BENCH_FLEET_RAY_WORKERS", "4"))
RAY_BATCH = int(os.environ.get("BENCH_FLEET_RAY_BATCH", "256"))
SELECTED_PEERS = [p for p in os.environ.get("BENCH_FLEET_PEERS", "curator,distilabel").split(",") if p]
# Which parts run (all by default); e.g. BENCH_FLEET_PARTS=library re-measures Ray Data's HTTP processor alone.
PARTS = set(os.environ.get("BENCH_FLEET_PARTS", "fleet,peers,library").split(","))


def plan(n: int) -> list[ChatRequest]:
    sampling = SamplingParams(temperature=0.7, max_tokens=32, seed=0)
    return [
        ChatRequest(f"q{i}", [{"role": "user", "content": f"Question {i}: why is the sky blue?"}], sampling)
        for i in range(n)
    ]


class ClientCpu:
    """CPU seconds of this process and every process it started, less the endpoints (they are the server):
    the Ray executor's cost includes its cluster's raylet, GCS and workers. The one-process sides (local
    executor, bare loop) are timed with ``own=True``: this process alone, so the idle cluster's background
    work is not charged to them.

    A sampler thread reads the descendants' CPU times every 0.2 s and keeps each one's last reading, so a Ray
    worker that exits at the end of its job still counts (less at most its last 0.2 s)."""

    def __init__(self, fleets: list[Fleet]) -> None:
        self.exclude = {p.pid for fleet in fleets for p in fleet.processes}
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        for child in psutil.Process().children(recursive=True):
            if child.pid not in self.exclude:
                try:
                    times = child.cpu_times()
                except psutil.Error:
                    continue  # gone since it was listed
                self.seen[child.pid] = times.user + times.system

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __call__(self, own: bool = False) -> float:
        if own:
            return time.process_time()
        self._sample()
        return time.process_time() + sum(self.seen.values())

    def close(self) -> None:
        self._stop.set()


def time_cotforge(
    urls: list[str],
    requests: list[ChatRequest],
    concurrency: int,
    cpu: ClientCpu,
    executor: str = "local",
    workers: int = RAY_WORKERS,
) -> tuple[float, float]:
    """Seconds and client CPU seconds for cotforge's engine to obtain every request (cache off)."""
    ray = {"replicas": workers, "batch_size": RAY_BATCH, "num_cpus": 1}
    config = LLMConfig(model=MODEL, base_urls=urls, concurrency=concurrency, timeout_s=600, parse_retries=0,
                       executor=executor, ray=ray)  # fmt: skip
    done: list[bool] = []
    own = executor == "local"
    t0, c0 = time.perf_counter(), cpu(own)
    RequestEngine(config, progress=False).run(requests, lambda r, text: text, lambda o: done.append(o.ok))
    wall, used = time.perf_counter() - t0, cpu(own) - c0
    assert len(done) == len(requests) and all(done), f"{done.count(False)} failed"
    return wall, used


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


def time_bare(
    urls: list[str], requests: list[ChatRequest], concurrency: int, cpu: ClientCpu
) -> tuple[float, float]:
    """Seconds and client CPU seconds for a bare ``AsyncOpenAI`` + semaphore loop over the same requests."""
    t0, c0 = time.perf_counter(), cpu(own=True)
    ok = asyncio.run(_bare(urls, requests, concurrency))
    wall, used = time.perf_counter() - t0, cpu(own=True) - c0
    assert ok == len(requests)
    return wall, used


def single_process_rate() -> float:
    """Requests/s of the faster of one bare client process and cotforge's local executor (one process too)
    against endpoints far faster than any client here: what one process can drive on this machine."""
    with Fleet(k=4, slots=128, latency=0.05) as fleet:
        cpu = ClientCpu([fleet])
        time_bare(fleet.urls, plan(1024), 512, cpu)  # warm-up
        rates = [4096 / time_bare(fleet.urls, plan(4096), 512, cpu)[0] for _ in range(2)]
        rates += [4096 / time_cotforge(fleet.urls, plan(4096), 512, cpu)[0] for _ in range(2)]
        cpu.close()
    return max(rates)


def library_http_processor(url: str, n: int) -> float:
    """Requests/s of Ray Data's ``HttpRequestProcessorConfig`` (two actors, batch 16) on ``url``."""
    import ray.data
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    config = HttpRequestProcessorConfig(url=url + "/chat/completions", batch_size=16, concurrency=2)
    body = {"model": MODEL, "max_tokens": 32, "temperature": 0.7, "seed": 0}
    processor = build_processor(
        config,
        preprocess=lambda row: {"payload": {**body, "messages": [{"role": "user", "content": row["q"]}]}},
        postprocess=lambda row: {"text": row["http_response"]["choices"][0]["message"]["content"]},
    )
    t0 = time.perf_counter()
    rows = processor(ray.data.from_items([{"q": f"Question {i}"} for i in range(n)])).take_all()
    assert len(rows) == n
    return n / (time.perf_counter() - t0)


def fleet_part(single: float, latency: float, n: int) -> float:
    """Local executor, Ray executor and bare loop on the sized fleet; returns the Ray executor / ideal."""
    in_flight = K * SLOTS
    sides = ("local", "ray", "bare")
    runs: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    with Fleet(k=K, slots=SLOTS, latency=latency) as fleet:
        ideal = fleet.ideal_rate
        cpu = ClientCpu([fleet])
        print(
            f"fleet: {K} endpoints × {SLOTS} slots, {latency:g} s each → ideal {ideal:.0f} req/s", flush=True
        )
        print(
            f"{n} requests, {in_flight} in flight, {ROUNDS} rounds; Ray: {RAY_WORKERS} workers, batch {RAY_BATCH}"
        )
        time_cotforge(fleet.urls, plan(in_flight), in_flight, cpu)  # warm-up: imports, connections
        for i in range(ROUNDS):
            for side in sides[i % 3 :] + sides[: i % 3]:  # rotate the order: load drift hits every side
                if side == "bare":
                    runs[side].append(time_bare(fleet.urls, plan(n), in_flight, cpu))
                else:
                    runs[side].append(time_cotforge(fleet.urls, plan(n), in_flight, cpu, side))
                wall, used = runs[side][-1]
                print(
                    f"  round {i + 1} {side}: {n / wall:.1f} req/s, client CPU {1000 * used / n:.2f} ms/request"
                )
    rates = {side: statistics.median(n / wall for wall, _ in r) for side, r in runs.items()}
    for side in sides:
        cpu_ms = 1000 * statistics.median(used for _, used in runs[side]) / n
        print(f"{side}: {rates[side]:.1f} req/s ({rates[side] / ideal:.3f} of the ideal, "
              f"{rates[side] / single:.2f}× one process), client CPU {cpu_ms:.2f} ms/request", flush=True)  # fmt: skip
    return rates["ray"] / ideal


def peers_part(latency: float, n: int) -> None:
    """cotforge's local executor, curator and distilabel on one endpoint × K × SLOTS slots."""
    in_flight = K * SLOTS
    prompts = [r.messages[0]["content"] for r in plan(n)]
    with Fleet(k=1, slots=in_flight, latency=latency) as one:
        print(f"peers: one endpoint × {in_flight} slots, {latency:g} s, same {n} requests", flush=True)
        cpu = ClientCpu([one])
        wall, used = time_cotforge(one.urls, plan(n), in_flight, cpu)
        cpu.close()
        ours = n / wall
        print(f"cotforge (one endpoint): {ours:.1f} req/s, client CPU {1000 * used / n:.2f} ms/request")
        best = 0.0
        for name in SELECTED_PEERS:
            result = time_peer(name, one.urls[0], prompts, in_flight)
            if isinstance(result, str):
                print(f"{name}: skipped: {result}", flush=True)
                continue
            wall, used, done = result
            best = max(best, done / wall)
            print(
                f"{name}: {done / wall:.1f} req/s ({done}/{n} done), client CPU {1000 * used / max(done, 1):.2f} ms/request"
            )
    if best:
        print(f"peer_ratio: {ours / best:.3f}")


def library_part() -> None:
    """Ray Data's HttpRequestProcessor beside the Ray executor, both with two actors, on one 50 ms endpoint."""
    with Fleet(k=1, slots=64, latency=0.05) as small:
        library = library_http_processor(small.urls[0], 256)
        cpu = ClientCpu([small])
        wall, _ = time_cotforge(small.urls, plan(256), 64, cpu, "ray", workers=2)
        cpu.close()
        print(f"ray.data.llm HttpRequestProcessor (2 actors, batch 16), one 50 ms endpoint, 256 requests: "
              f"{library:.1f} req/s; cotforge's Ray executor (2 workers), same: {256 / wall:.1f} req/s")  # fmt: skip


def main() -> None:
    import ray

    ratio = None
    if PARTS & {"fleet", "peers"}:
        single = single_process_rate()
        print(f"single_process_req_s: {single:.1f}", flush=True)
        latency, n = round(K * SLOTS / (HEADROOM * single), 3), WAVES * K * SLOTS
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray kills workers when the node's memory passes 95%; on a shared machine that memory is mostly other
    # work's, and the monitor would kill this benchmark's small workers in a loop for it.
    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    ray.init(num_cpus=RAY_WORKERS, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    if "fleet" in PARTS:
        ratio = fleet_part(single, latency, n)
    if "peers" in PARTS:
        peers_part(latency, n)
    if "library" in PARTS:
        library_part()
    ray.shutdown()
    if ratio is not None:
        print(f"ratio: {ratio:.3f}")


if __name__ == "__main__":
    sys.exit(main())

"""The Ray executor on a real local Ray cluster (2 CPUs, one per test session): the same records as the local
executor on the fixed-latency endpoints and on the CPU vLLM server, resume without resending, a worker killed
mid-job, and the cluster errors that must stop a stage before anything is sent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest

from cotforge.generation.generate import generate_in_run
from cotforge.generation.requests import GenerateConfig
from cotforge.llm import ChatRequest, LLMConfig, RequestEngine, RequestOutcome
from cotforge.llm.ray_executor import RayClusterError
from cotforge.runfolder import RunFiles
from cotforge.schemas import SamplingParams
from cotforge.serving.vllm_server import VLLMServer, free_port
from tests.llm.conftest import small_generation

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
# What differs between two runs of the same requests by design: timing and where an answer came from.
VOLATILE = ("created_at", "latency_s", "cached")


def _records(run: Path, name: str) -> dict[str, dict[str, Any]]:
    out = {}
    for line in (run / name).read_text(encoding="utf-8").split("\n"):
        if line.strip():
            record = json.loads(line)
            out[record.get("id") or record["record_id"]] = {
                k: v for k, v in record.items() if k not in VOLATILE
            }
    return out


def _copy(prompts_run: Path, tmp_path: Path, name: str) -> Path:
    run = tmp_path / name
    shutil.copytree(prompts_run, run)
    return run


def test_ray_and_local_executors_write_the_same_samples_on_the_fleet(
    ray_cluster: str, fleet_endpoints: ModuleType, prompts_run: Path, tmp_path: Path
) -> None:
    # The endpoints answer each request body with its own digest, so a record matches only its own request.
    with fleet_endpoints.Fleet(k=2, slots=16, latency=0.05, model="tiny") as fleet:
        results = {}
        for executor in ("local", "ray"):
            raw = small_generation(
                "tiny", fleet.urls[0], executor=executor, ray={"replicas": 2, "batch_size": 4}
            )
            raw["teacher"]["base_urls"] = fleet.urls
            raw["samples_per_prompt"] = 3
            run = _copy(prompts_run, tmp_path, executor)
            results[executor] = generate_in_run(run, GenerateConfig.model_validate(raw))
    local, ray = _records(tmp_path / "local", RunFiles.SAMPLES), _records(tmp_path / "ray", RunFiles.SAMPLES)
    assert len(local) == results["local"].planned > 0
    assert ray == local
    assert results["ray"].usage["requests_sent"] == results["local"].usage["requests_sent"] == len(local)
    assert sum(results["ray"].usage["endpoints"].values()) == len(local)  # the workers' real endpoints


def test_cli_generate_with_executor_ray_matches_local_on_the_vllm_server_and_resumes_from_the_cache(
    ray_cluster: str, tiny_vllm_server: VLLMServer, prompts_run: Path, tmp_path: Path
) -> None:
    config = tmp_path / "generate.yaml"
    config.write_text(json.dumps(small_generation("tiny", tiny_vllm_server.base_url, concurrency=8)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}

    def generate(run: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-m", "cotforge", "generate", "--run", str(run), "--config", str(config)]
        return subprocess.run([*args, "--no-validate", *extra], env=env, capture_output=True, text=True)

    runs = {name: _copy(prompts_run, tmp_path, name) for name in ("local", "ray")}
    assert generate(runs["local"]).returncode == 0
    on_ray = ("--executor", "ray", "--ray-address", ray_cluster)
    first = generate(runs["ray"], *on_ray)
    assert first.returncode == 0, first.stderr[-2000:]
    for name in (RunFiles.SAMPLES, "generate.rejects.jsonl"):
        if (runs["local"] / name).exists() or (runs["ray"] / name).exists():
            assert _records(runs["ray"], name) == _records(runs["local"], name), name
    manifest = json.loads((runs["ray"] / "manifests" / "generate.json").read_text())
    assert manifest["config"]["teacher"]["executor"] == "ray"
    # Same command again after the samples file is lost: every answer comes from the cache, nothing is sent.
    (runs["ray"] / RunFiles.SAMPLES).unlink()
    again = generate(runs["ray"], *on_ray)
    assert again.returncode == 0, again.stderr[-2000:]
    manifest = json.loads((runs["ray"] / "manifests" / "generate.json").read_text())
    assert manifest["extra"]["usage"]["requests_sent"] == 0
    assert _records(runs["ray"], RunFiles.SAMPLES) == _records(runs["local"], RunFiles.SAMPLES)


def _map_workers() -> list[psutil.Process]:
    """This test process's Ray Data map workers (never another session's)."""
    mine = psutil.Process().children(recursive=True)
    return [p for p in mine if "MapWorker" in " ".join(p.cmdline())]


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(
    ray_cluster: str, fleet_endpoints: ModuleType
) -> None:
    sampling = SamplingParams(max_tokens=8, seed=3)
    requests = [ChatRequest(f"r{i}", [{"role": "user", "content": f"q {i}"}], sampling) for i in range(240)]
    outcomes: list[RequestOutcome[str]] = []
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while not outcomes and time.monotonic() < deadline:
            time.sleep(0.05)  # once answers flow, a worker is mid-batch
        for worker in _map_workers()[:1]:
            killed.append(worker.pid)
            os.kill(worker.pid, signal.SIGKILL)

    with fleet_endpoints.Fleet(k=1, slots=32, latency=0.4) as fleet:
        config = LLMConfig(
            model="fleet",
            base_urls=fleet.urls,
            concurrency=16,
            executor="ray",
            ray={"replicas": 2, "batch_size": 8},
        )
        killer = threading.Thread(target=kill_one_worker)
        killer.start()
        stats = RequestEngine(config, progress=False).run(requests, lambda r, t: t, outcomes.append)
        killer.join()
    assert killed, "no map worker was found to kill"
    keys = [o.request.key for o in outcomes]
    assert sorted(keys) == sorted(r.key for r in requests)  # each request once: none lost, none twice
    assert all(o.ok for o in outcomes) and stats.failed == 0


def test_cluster_errors_stop_the_stage_before_anything_is_sent(
    ray_cluster: str, tiny_model_dir: Path, prompts_run: Path, tmp_path: Path
) -> None:
    # A GPU engine on a cluster without GPUs (this one has 2 CPUs): named, before any request.
    engine = LLMConfig(model=str(tiny_model_dir), backend="vllm", executor="ray", ray={"replicas": 1})
    request = ChatRequest("k", [{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4))
    with pytest.raises(RayClusterError, match=r"has 0 GPUs.*ask for 1"):
        RequestEngine(engine, progress=False).run([request], lambda r, t: t, lambda o: None)
    # An address where nothing listens, from the CLI: exit 1, the address named, no output written.
    dead = f"127.0.0.1:{free_port()}"
    run = _copy(prompts_run, tmp_path, "dead")
    config = tmp_path / "generate.yaml"
    config.write_text(json.dumps(small_generation("tiny", "http://127.0.0.1:9/v1")))
    command = [sys.executable, "-m", "cotforge", "generate", "--run", str(run), "--config", str(config)]
    result = subprocess.run(
        [*command, "--executor", "ray", "--ray-address", dead, "--no-validate"],
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and dead in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not (run / RunFiles.SAMPLES).exists() or not (run / RunFiles.SAMPLES).read_text().strip()

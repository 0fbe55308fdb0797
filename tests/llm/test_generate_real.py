"""`generate` against real vLLM servers: structured (tiny model), tagged (SmolLM2), the offline engine,
injected faults, and a SIGKILL mid-run followed by a resume."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cotforge.errors import FailedRecordsError
from cotforge.generation.generate import generate_in_run
from cotforge.generation.requests import GenerateConfig
from cotforge.generation.validate import validate_in_run
from cotforge.runfolder import RunFiles, RunFolder, read_jsonl
from cotforge.schemas import PromptRecord, Rationale, RejectRecord, Sample, Verdict
from cotforge.serving.vllm_server import VLLMServer
from tests.llm.conftest import small_generation
from tests.llm.fault_proxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _slots(run: Path) -> tuple[list[str], list[RejectRecord]]:
    samples = [s.id for s in read_jsonl(run / RunFiles.SAMPLES, Sample)]
    rejects = list(read_jsonl(run / RunFiles.GENERATE_REJECTS, RejectRecord))
    return samples, rejects


def _every_slot_once(run: Path, planned: int) -> tuple[list[str], list[RejectRecord]]:
    samples, rejects = _slots(run)
    ids = samples + [r.record_id or "" for r in rejects]
    assert len(ids) == len(set(ids)) == planned, (len(ids), len(set(ids)), planned)
    return samples, rejects


def test_structured_mode_on_tiny_server_is_concurrent_cached_and_keeps_no_key(
    prompts_run: Path, tiny_vllm_server: VLLMServer
) -> None:
    secret = "sk-test-DO-NOT-LEAK-1234567890abcdef"
    os.environ["COTFORGE_TEST_KEY"] = secret
    try:
        with FaultProxy(tiny_vllm_server.base_url) as proxy:
            raw = small_generation("tiny", proxy.base_url, concurrency=6, api_key_env="COTFORGE_TEST_KEY")
            config = GenerateConfig.model_validate({**raw, "samples_per_prompt": 2})
            result = generate_in_run(prompts_run, config)
            planned = result.planned
            samples, rejects = _every_slot_once(prompts_run, planned)
            assert planned == 18 and len(samples) == result.generated
            assert proxy.max_in_flight > 1  # concurrency was really used
            for sample in read_jsonl(prompts_run / RunFiles.SAMPLES, Sample):
                assert sample.rationale == Rationale.model_validate(json.loads(sample.raw_text))
                assert sample.usage.completion_tokens > 0 and sample.template_hash
            sent = len(proxy.bodies)
            # Every body carried the bounded schema as response_format.
            assert all(b["response_format"]["type"] == "json_schema" for b in proxy.bodies)

            again = generate_in_run(prompts_run, config)
            assert again.already_done == planned and len(proxy.bodies) == sent

            fresh = prompts_run.parent / "fresh"
            fresh.mkdir()
            for name in (RunFiles.PROMPTS, RunFiles.CACHE):
                (fresh / name).write_bytes((prompts_run / name).read_bytes())
            cached = generate_in_run(fresh, config)
            # Rejected slots fail again from their cached attempts: nothing at all is sent.
            assert cached.cached == len(samples) and cached.rejected == len(rejects)
            assert len(proxy.bodies) == sent
            assert sorted(_slots(fresh)[0]) == sorted(samples)  # the same slots, all from the cache
    finally:
        del os.environ["COTFORGE_TEST_KEY"]
    for path in prompts_run.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_tagged_mode_on_smollm2_parses_real_text_and_rejects_with_raw_outputs(
    prompts_run: Path, smollm2_vllm_server: VLLMServer
) -> None:
    raw = {
        "teacher": {
            "model": "smollm2",
            "base_urls": [smollm2_vllm_server.base_url],
            "concurrency": 9,
            "parse_retries": 1,
            "sampling": {"temperature": 0.7, "max_tokens": 220},
        },
        "output_mode": "tagged",
        "prefill_think": True,  # SmolLM2 never opens <think> itself; it continues an opened one
        "samples_per_prompt": 2,
        "progress": False,
    }
    result = generate_in_run(prompts_run, GenerateConfig.model_validate(raw))
    samples, rejects = _every_slot_once(prompts_run, result.planned)
    assert samples, "no SmolLM2 output parsed in tagged mode"
    for sample in read_jsonl(prompts_run / RunFiles.SAMPLES, Sample):
        assert sample.output_mode == "tagged"
        assert Rationale.from_tagged(sample.raw_text) == sample.rationale
    for reject in rejects:
        assert reject.reasons == ["parse_failed"]
        assert len(reject.raw["outputs"]) == 2  # the first try and one re-ask, both kept verbatim
        assert all(isinstance(t, str) and t for t in reject.raw["outputs"])
    validation = validate_in_run(prompts_run)
    assert validation.samples == len(samples)
    verdicts = RunFolder(prompts_run).read(RunFiles.VERDICTS, Verdict)
    assert len(verdicts) == len(samples)


def test_offline_vllm_engine_backend_on_the_tiny_model(prompts_run: Path, tiny_model_dir: Path) -> None:
    # A subprocess: the in-process engine must not share a process with other tests' torch state.
    cmd = [
        sys.executable, "-m", "cotforge", "generate", "--run", str(prompts_run), "--backend", "vllm",
        "--model", str(tiny_model_dir), "--concurrency", "8", "--max-tokens", "200", "--no-validate",
        "--no-progress", "--kind", "safety",
    ]  # fmt: skip
    config = prompts_run / "bounds.yaml"
    config.write_text("bounds: {min_steps: 2, max_steps: 3, max_step_chars: 40, max_answer_chars: 80}\n")
    done = subprocess.run(
        [*cmd, "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    samples, _ = _every_slot_once(prompts_run, 6)
    assert samples
    for sample in read_jsonl(prompts_run / RunFiles.SAMPLES, Sample):
        assert sample.teacher_backend == "vllm" and sample.usage.prompt_tokens > 0


def test_faults_between_client_and_server_every_slot_ends_once(
    prompts_run: Path, tiny_vllm_server: VLLMServer
) -> None:
    doomed = "Explain"  # every request whose prompt has this word fails with 500, forever

    kinds = ["429", "500", "delay", "truncate", "nonjson"]
    healthy = itertools.count(1)
    lock = threading.Lock()

    def schedule(n: int, body: dict[str, object]) -> str | None:
        if doomed in json.dumps(body["messages"]):
            return "500"
        with lock:
            k = next(healthy)
        # Other requests 1, 3, 5, 7, 9 get one fault kind each: five faults cannot exhaust six attempts.
        return kinds[k // 2] if k < 10 and k % 2 == 1 else None

    with FaultProxy(tiny_vllm_server.base_url, schedule=schedule, fault_delay_s=2.5) as proxy:
        raw = small_generation(
            "tiny", proxy.base_url, concurrency=4, timeout_s=1.5, backoff_base_s=0.05, backoff_max_s=0.3,
            max_retries=5,
        )  # fmt: skip
        # A request that failed after every retry is never a silent hole: the stage ends with an error.
        with pytest.raises(FailedRecordsError, match=r"generate\.rejects\.jsonl"):
            generate_in_run(prompts_run, GenerateConfig.model_validate(raw))
    manifest = json.loads((prompts_run / "manifests" / "generate.json").read_text())
    assert manifest["status"] == "failed"
    _, rejects = _every_slot_once(prompts_run, manifest["counts"]["planned"])
    assert {f for _, f in proxy.faults} == {"429", "500", "delay", "truncate", "nonjson"}
    prompts = {p.id: p.text for p in read_jsonl(prompts_run / RunFiles.PROMPTS, PromptRecord)}
    doomed_ids = {pid for pid, text in prompts.items() if doomed in text}
    assert doomed_ids, "the bundled prompts changed; pick another word"
    failed = {r.raw["prompt_id"] for r in rejects if r.reasons == ["request_failed"]}
    assert failed == doomed_ids
    assert manifest["extra"]["usage"]["retries"] >= 5


def test_sigkill_mid_run_then_resume_repeats_no_completed_request(
    prompts_run: Path, tiny_vllm_server: VLLMServer
) -> None:
    with FaultProxy(tiny_vllm_server.base_url, delay_s=0.4) as proxy:
        config = prompts_run / "gen.yaml"
        config.write_text(
            json.dumps({**small_generation("tiny", proxy.base_url, concurrency=2), "samples_per_prompt": 2})
        )
        cmd = [sys.executable, "-m", "cotforge", "generate", "--run", str(prompts_run), "--config", str(config),
               "--no-validate"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples_file = prompts_run / RunFiles.SAMPLES
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if samples_file.exists() and len(samples_file.read_bytes().splitlines()) >= 4:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before, rejects_before = _slots(prompts_run)
        assert 4 <= len(done_before) < 18
        seeds_done = {s.sampling.seed for s in read_jsonl(samples_file, Sample)}
        sent_before = len(proxy.bodies)

        resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    _every_slot_once(prompts_run, 18)
    after = proxy.bodies[sent_before:]
    assert not seeds_done & {b.get("seed") for b in after}  # no completed slot was asked again
    assert len(after) <= 18 - len(done_before) - len(rejects_before) + 2  # at most the in-flight ones twice

"""Batch mode against a local Files + Batches server that runs each batch on a real vLLM server: a partially
failed batch with bad output lines, an expired batch, and a SIGKILL while a batch is in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cotforge.generation.generate import generate_in_run
from cotforge.generation.requests import GenerateConfig
from cotforge.llm.batch import STATE_FILE
from cotforge.llm.pricing import LEDGER_FILE, read_ledger
from cotforge.runfolder import RunFiles, RunFolder, read_jsonl
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import Rationale, RejectRecord, Sample
from cotforge.serving.vllm_server import VLLMServer, free_port
from tests.llm.conftest import small_generation

REPO = Path(__file__).resolve().parents[2]
PRICE = {"prompt_per_million": 2.0, "completion_per_million": 4.0}
PLANNED = 4

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def batch_server(tiny_vllm_server: VLLMServer) -> Iterator[str]:
    """The tests' batch server in front of the tiny vLLM server; yields its /v1 URL; stopped by PID."""
    port = free_port()
    cmd = [sys.executable, str(REPO / "tests/llm/batch_server.py"), "--port", str(port),
           "--upstream", tiny_vllm_server.base_url]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "batch server did not start"
            time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _admin(url: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    base = url.removesuffix("/v1")
    reply = (
        httpx.post(f"{base}{path}", json=payload or {}) if payload is not None else httpx.get(f"{base}{path}")
    )
    reply.raise_for_status()
    return reply.json()


def _batch_ids(url: str, batch: dict[str, Any]) -> list[str]:
    text = httpx.get(f"{url}/files/{batch['input_file_id']}/content").text
    return [json.loads(line)["custom_id"] for line in text.splitlines() if line.strip()]


def _config(url: str, **batch: Any) -> GenerateConfig:
    raw = small_generation("tiny", url, mode="batch", price=PRICE,
                           batch={"poll_interval_s": 0.3, "settle_s": 0.8, **batch})  # fmt: skip
    return GenerateConfig.model_validate({**raw, "limit": 2, "samples_per_prompt": 2})


def _every_slot_once(run: Path) -> list[Sample]:
    samples = list(read_jsonl(run / RunFiles.SAMPLES, Sample))
    rejects = list(read_jsonl(run / RunFiles.GENERATE_REJECTS, RejectRecord))
    ids = [s.id for s in samples] + [r.record_id for r in rejects]
    assert len(ids) == len(set(ids)) == PLANNED, ids
    for sample in samples:  # each output went to its own request: the text parses to the stored rationale
        assert sample.rationale == Rationale.model_validate(json.loads(sample.raw_text))
    return samples


def _new_batches(url: str, before: int) -> list[dict[str, Any]]:
    batches = _admin(url, "/admin/record")["batches"]
    return sorted(batches, key=lambda b: b["created_at"])[before:]


def test_partial_failure_and_bad_lines_resubmit_only_the_failed_items(
    prompts_run: Path, batch_server: str, capfd: pytest.CaptureFixture[str]
) -> None:
    before = len(_admin(batch_server, "/admin/record")["batches"])
    _admin(batch_server, "/admin/config", {"fail_every": 2, "bad_lines": True})
    result = generate_in_run(prompts_run, _config(batch_server))
    samples = _every_slot_once(prompts_run)
    assert result.planned == PLANNED and len(samples) == PLANNED
    batches = _new_batches(batch_server, before)
    first, rest = batches[0], batches[1:]
    first_ids = _batch_ids(batch_server, first)
    assert len(first_ids) == PLANNED and first["request_counts"]["failed"] == PLANNED // 2
    # Only the failed items (every second line) went out again.
    assert sorted(i for b in rest for i in _batch_ids(batch_server, b)) == sorted(first_ids[0::2])
    err = capfd.readouterr().err
    assert "not a batch result line" in err and "custom_id 'nobody' matches no request" in err
    manifest = load_manifest(RunFolder(prompts_run), "generate")
    assert manifest is not None and manifest.usage.requests == PLANNED + PLANNED // 2  # the failed twice
    usage = manifest.usage
    half = round(usage.prompt_tokens * 1.0 / 1e6 + usage.completion_tokens * 2.0 / 1e6, 6)
    assert usage.cost_usd == pytest.approx(half)  # batch price: half the online one
    ledger = read_ledger(prompts_run / LEDGER_FILE)
    assert len(ledger) == PLANNED and {row["mode"] for row in ledger} == {"batch"}


def test_expired_batch_resubmits_the_items_it_did_not_run(prompts_run: Path, batch_server: str) -> None:
    before = len(_admin(batch_server, "/admin/record")["batches"])
    _admin(batch_server, "/admin/config", {"expire_after": 1})
    generate_in_run(prompts_run, _config(batch_server))
    assert len(_every_slot_once(prompts_run)) == PLANNED
    batches = _new_batches(batch_server, before)
    assert batches[0]["status"] == "expired"
    first_ids = _batch_ids(batch_server, batches[0])
    assert sorted(i for b in batches[1:] for i in _batch_ids(batch_server, b)) == sorted(first_ids[1:])


def test_sigkill_while_a_batch_is_in_flight_then_the_rerun_polls_the_same_batch(
    prompts_run: Path, batch_server: str
) -> None:
    record = _admin(batch_server, "/admin/record")
    uploads_before, batches_before = len(record["uploads"]), len(record["batches"])
    _admin(batch_server, "/admin/config", {"hold": True})
    config = prompts_run / "gen.yaml"
    config.write_text(json.dumps(_config(batch_server).model_dump(mode="json")))
    cmd = [sys.executable, "-m", "cotforge", "generate", "--run", str(prompts_run), "--config", str(config),
           "--no-validate"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = prompts_run / STATE_FILE
    deadline = time.monotonic() + 120
    while not (state.exists() and "batch_id" in state.read_text()):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "no batch was submitted"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (prompts_run / RunFiles.SAMPLES).exists() or not (prompts_run / RunFiles.SAMPLES).read_text()
    _admin(batch_server, "/admin/config", {})  # releases the held batch

    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(_every_slot_once(prompts_run)) == PLANNED
    record = _admin(batch_server, "/admin/record")
    # Paid once: the rerun polled the batch the killed run had submitted.
    assert len(record["uploads"]) == uploads_before + 1 and len(record["batches"]) == batches_before + 1
    assert len(read_ledger(prompts_run / LEDGER_FILE)) == PLANNED

"""The real-server fixtures work (guided JSON from the tiny model, a plain answer from SmolLM2), and the
managed-process class under them starts, waits for health, logs and stops by PID."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
from openai import OpenAI

from cotforge.errors import CotforgeError
from cotforge.serving.process import ManagedProcess, ProcessStartError, free_port, http_ok
from cotforge.serving.vllm_server import VLLMServer

pytestmark = pytest.mark.integration

SCHEMA = {
    "type": "object",
    "properties": {
        "reasoning_steps": {
            "type": "array",
            "items": {"type": "string", "maxLength": 60},
            "minItems": 1,
            "maxItems": 3,
        },
        "answer": {"type": "string", "maxLength": 80},
    },
    "required": ["reasoning_steps", "answer"],
    "additionalProperties": False,
}


def test_tiny_server_returns_schema_valid_json(tiny_vllm_server: VLLMServer) -> None:
    client = OpenAI(base_url=tiny_vllm_server.base_url, api_key="unused")
    resp = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Explain recursion."}],
        max_tokens=400,
        temperature=1.0,
        seed=7,
        response_format={"type": "json_schema", "json_schema": {"name": "rationale", "schema": SCHEMA}},
    )
    data = json.loads(resp.choices[0].message.content or "")
    assert set(data) == {"reasoning_steps", "answer"}
    assert 1 <= len(data["reasoning_steps"]) <= 3
    assert all(isinstance(s, str) and len(s) <= 60 for s in data["reasoning_steps"])
    assert resp.usage is not None and resp.usage.completion_tokens > 0


def test_smollm2_answers_in_words(smollm2_vllm_server: VLLMServer) -> None:
    client = OpenAI(base_url=smollm2_vllm_server.base_url, api_key="unused")
    resp = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
        max_tokens=40,
        temperature=0.0,
    )
    text = resp.choices[0].message.content or ""
    assert "paris" in text.lower()


def test_server_stops_by_pid(tiny_model_dir) -> None:  # type: ignore[no-untyped-def]
    server = VLLMServer(str(tiny_model_dir), served_model_name="tiny", startup_timeout_s=1.0)
    server.start()
    pid = server.process.pid  # type: ignore[union-attr]
    server.stop()
    assert server.process is not None and server.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # signal 0: does any process of the group remain?


# --- the managed-process class both servers run on, exercised with small real processes ---------------------

HTTP_SERVER = """
import http.server, os, sys, time
port = int(sys.argv[1])
if os.fork() == 0:  # a worker in the same process group, as vLLM and uvicorn have
    time.sleep(600)
    sys.exit(0)
print("serving on", port, flush=True)
time.sleep(float(sys.argv[2]))  # start-up time before the port answers
http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _group_alive(pgid: int, settle_s: float = 5.0) -> bool:
    """Does a live (not zombie) process of group ``pgid`` remain after ``settle_s``? (Linux /proc.)

    A worker orphaned by its leader's exit is reaped by whichever process adopts it, possibly later: a zombie
    holds no port and no memory, so it does not count.
    """
    deadline = time.monotonic() + settle_s
    while True:
        live = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process went away while we looked
            if int(fields[2]) == pgid and fields[0] != "Z":
                live.append(stat.parent.name)
        if not live or time.monotonic() > deadline:
            return bool(live)
        time.sleep(0.1)


def test_managed_process_waits_for_health_logs_and_stops_its_whole_group(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "logs" / "http.log"
    proc = ManagedProcess("test server", [sys.executable, "-c", HTTP_SERVER, str(port), "0.5"], log)
    proc.start()
    try:
        assert not http_ok(f"http://127.0.0.1:{port}/")  # not up yet: the wait below is what makes it so
        proc.wait_healthy(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout_s=30, poll_s=0.1)
        assert proc.alive() and http_ok(f"http://127.0.0.1:{port}/")
    finally:
        proc.stop(grace_s=5)
    assert proc.pid is not None and not proc.alive()
    assert not _group_alive(proc.pid)  # the forked worker went with it
    assert f"serving on {port}" in log.read_text()


def test_managed_process_that_exits_raises_the_callers_error_with_its_log(tmp_path: Path) -> None:
    class DemoError(CotforgeError):
        pass

    log = tmp_path / "crash.log"
    script = "import sys; print('bad flag --frobnicate', file=sys.stderr); sys.exit(3)"
    proc = ManagedProcess("crashing server", [sys.executable, "-c", script], log, error=DemoError).start()
    with pytest.raises(DemoError, match=r"(?s)crashing server exited with code 3.*bad flag --frobnicate"):
        proc.wait_healthy(lambda: False, timeout_s=30, poll_s=0.05)
    with pytest.raises(DemoError, match=re.escape(f"(log {log})")):
        proc.wait_healthy(lambda: False, timeout_s=30, poll_s=0.05)


def test_managed_process_never_healthy_times_out_and_is_stopped(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "silent server",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        tmp_path / "silent.log",
        env={**os.environ, "COTFORGE_TEST": "1"},
    ).start()
    with pytest.raises(ProcessStartError, match=r"silent server not healthy after 1s"):
        proc.wait_healthy(lambda: False, timeout_s=1.0, poll_s=0.1)
    assert not proc.alive() and proc.pid is not None and not _group_alive(proc.pid)


def test_an_interrupted_wait_stops_the_process(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "slow server", [sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / "slow.log"
    ).start()

    def interrupted() -> bool:
        raise KeyboardInterrupt  # what Ctrl-C raises in the polling loop

    with pytest.raises(KeyboardInterrupt):
        proc.wait_healthy(interrupted, timeout_s=60)
    assert not proc.alive() and proc.pid is not None and not _group_alive(proc.pid)

"""`cotforge review serve` as a user runs it: start, stop by PID mid-pull, restart from the same database."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from review_builders import create_annotator, dataset_id_of, write_review_run

from cotforge.review.connection import ReviewConnectionError
from cotforge.review.pull import ReviewPullConfig
from cotforge.review.push import ReviewPushConfig
from cotforge.review.server import STATE_FILE, ReviewServerError, find_server_python
from cotforge.review.stage import pull_from_argilla, push_to_argilla
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import load_manifest
from cotforge.serving.vllm_server import free_port

pytestmark = pytest.mark.integration
OUTPUTS = (RunFiles.REVIEWED, RunFiles.REVIEW_VERDICTS, RunFiles.REVIEW_DECISIONS)
ACCEPT = {"reasoning_quality": 4, "answer_verdict": "helpful", "consistency": "consistent"}
HARMFUL = {"reasoning_quality": 2, "answer_verdict": "harmful", "consistency": "consistent"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def serve(home: Path, port: int, key: str, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Run `cotforge review serve` and wait until it answers; returns the process and its server.json."""
    env = {**os.environ, "ARGILLA_API_KEY": key}
    cmd = [sys.executable, "-m", "cotforge", "review", "serve", "--port", str(port), "--home", str(home)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        state_file = home / STATE_FILE
        if state_file.exists():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/version", timeout=5) as resp:
                assert resp.status == 200
            return proc, json.loads(state_file.read_text())
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"serve did not come up:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_server_killed_mid_pull_leaves_outputs_intact_and_a_rerun_completes(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, home, port, log = secrets.token_urlsafe(18), tmp_path / "home", free_port(), tmp_path / "serve.log"
    monkeypatch.setenv("ARGILLA_API_KEY", key)
    monkeypatch.setenv("ARGILLA_API_URL", f"http://127.0.0.1:{port}")
    proc, state = serve(home, port, key, log)
    try:
        samples = write_review_run(run_dir, 30)
        target = {"workspace": "serve", "dataset": "stop-mid-pull"}
        push_to_argilla(run_dir, ReviewPushConfig(**target, progress=False))
        ann = create_annotator(state["url"], key, "ann", "serve")
        queue = ann.pending(dataset_id_of(state["url"], key, "serve", "stop-mid-pull"))
        for sample in samples[:10]:
            ann.respond(queue[sample.id], "submitted", ACCEPT)
        first = pull_from_argilla(run_dir, ReviewPullConfig(**target, progress=False))
        assert first.counts["accepted"] == 10
        folder = RunFolder(run_dir)
        before = {name: folder.path(name).read_bytes() for name in OUTPUTS}
        for sample in samples[10:20]:
            ann.respond(queue[sample.id], "submitted", HARMFUL)

        def kill_server_after_first_page(fetched: int, total: int) -> None:
            if fetched == 10:
                stop(proc)  # the serve command stops Argilla and Redis by PID, then exits

        config = ReviewPullConfig(**target, page_size=10, retries=0, progress=False)
        with pytest.raises(ReviewConnectionError, match=r"lost the connection to Argilla .* while pulling"):
            pull_from_argilla(run_dir, config, on_page=kill_server_after_first_page)
        assert proc.returncode == 0
        assert not alive(state["argilla_pid"]) and not alive(state["redis_pid"])
        assert not (home / STATE_FILE).exists()
        assert {name: folder.path(name).read_bytes() for name in OUTPUTS} == before
        manifest = load_manifest(folder, "review")
        assert manifest is not None and manifest.status == "failed"

        # Restart from the same database: the in-memory index is rebuilt, and the pull completes.
        proc, state = serve(home, port, key, log)
        assert ann.http.get("/api/v1/me").status_code == 200  # the annotator's session survives
        second = pull_from_argilla(run_dir, config)
        assert (second.counts["accepted"], second.counts["rejected"], second.counts["pending"]) == (
            10,
            10,
            10,
        )
        assert len(ann.pending(dataset_id_of(state["url"], key, "serve", "stop-mid-pull"))) == 10
    finally:
        stop(proc)
    assert key not in log.read_text()


def test_server_python_lookup_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COTFORGE_ARGILLA_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(ReviewServerError, match=r"COTFORGE_ARGILLA_PYTHON=.* is not an executable Python"):
        find_server_python(build=False)
    monkeypatch.delenv("COTFORGE_ARGILLA_PYTHON")
    found = find_server_python(build=False)
    result = subprocess.run(
        [str(found), "-c", "from importlib.metadata import version; print(version('argilla-server'))"],
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "2.8.0"

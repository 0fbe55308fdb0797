"""`cotforge serve`: a real vLLM server held by the CLI, one request through it, stopped by SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from openai import OpenAI


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
def test_serve_prints_the_url_answers_and_stops_the_server_on_ctrl_c(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    cmd = [sys.executable, "-m", "cotforge", "serve", str(tiny_model_dir), "--name", "tiny"]
    cmd += ["--max-model-len", "512", "--max-num-seqs", "4", "--run", str(tmp_path)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = None
        while url is None:  # bounded by the server's own start-up timeout (600 s), after which serve exits
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("http://"):
                url = line.strip()
        assert url is not None, "".join(lines)
        pid_line = next(line for line in lines if "pid" in line)
        server_pid = int(re.search(r"pid (\d+)", pid_line).group(1))  # type: ignore[union-attr]
        answer = OpenAI(base_url=url, api_key="EMPTY").chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, seed=1
        )
        assert answer.choices[0].message.content is not None
        assert (tmp_path / "logs" / "vllm-tiny.log").stat().st_size > 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        out = proc.stdout.read()
        assert "server stopped" in out
        assert not _pid_alive(server_pid)
    finally:
        if proc.poll() is None:
            # SIGINT first: serve then stops its server by PID; killing serve outright would orphan it.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

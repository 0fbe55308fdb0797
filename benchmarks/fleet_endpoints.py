"""Fixed-latency OpenAI-compatible endpoints: the fleet that bench-fleet and bench-generate drive.

Run as a script, one process per endpoint: ``python benchmarks/fleet_endpoints.py --port P --latency 0.5
--slots 16``. Each answers ``POST /v1/chat/completions`` after exactly ``latency`` seconds with at most ``slots``
requests served at once (more wait their turn, like a server's queue), plus ``GET /health`` and
``GET /v1/models`` (with a ``max_model_len``, as vLLM reports it). The answer is a rationale JSON that
cotforge's structured generation accepts, fixed per request body (see :func:`answer_to`). A bare asyncio protocol keeps the endpoint's own CPU per request far
below the client's, so the client is what gets measured.

:class:`Fleet` starts K such processes, waits for each ``/health``, and stops them by PID (``kill(i)`` SIGKILLs
one mid-run, as a dying replica).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType


def answer_to(body: bytes) -> str:
    """A valid rationale that depends on the request (its body's digest): the same request always gets the same
    answer and two different requests almost never do, so runs through different clients can be compared."""
    digest = hashlib.blake2b(body, digest_size=6).hexdigest()
    return json.dumps(
        {"reasoning_steps": ["The user asks something.", "I answer it."], "answer": f"Answer {digest}."}
    )


MAX_MODEL_LEN = 32768


def _response(status: str, payload: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    return head.encode("latin-1") + payload


def _completion(model: str, number: int, body: bytes) -> bytes:
    body = {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer_to(body)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60},
    }
    return _response("200 OK", json.dumps(body).encode())


class _Endpoint(asyncio.Protocol):
    def __init__(self, model: str, latency: float, slots: asyncio.Semaphore, counter: list[int]) -> None:
        self.model, self.latency, self.slots, self.counter = model, latency, slots, counter
        self.buffer = b""
        self.answering: set[asyncio.Task[None]] = set()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path = head.split(" ", 2)[:2]
            task = asyncio.ensure_future(self._answer(method, path, body))
            self.answering.add(task)
            task.add_done_callback(self.answering.discard)

    async def _answer(self, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path.endswith("/chat/completions"):
            self.counter[0] += 1
            number = self.counter[0]
            async with self.slots:
                await asyncio.sleep(self.latency)
            reply = _completion(self.model, number, body)
        elif path == "/health":
            reply = _response("200 OK", b"")
        elif path.endswith("/models"):
            models = {"object": "list", "data": [{"id": self.model, "max_model_len": MAX_MODEL_LEN}]}
            reply = _response("200 OK", json.dumps(models).encode())
        else:
            reply = _response("404 Not Found", b'{"error": "not found"}')
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)


async def serve(port: int, model: str, latency: float, slots: int) -> None:
    semaphore = asyncio.Semaphore(slots)
    counter = [0]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Endpoint(model, latency, semaphore, counter), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fleet:
    """K endpoint processes on loopback; use as a context manager."""

    k: int
    slots: int
    latency: float
    model: str = "fleet"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def __enter__(self) -> Fleet:
        for _ in range(self.k):
            port = free_port()
            cmd = [sys.executable, str(Path(__file__).resolve()), "--port", str(port)]
            cmd += ["--latency", str(self.latency), "--slots", str(self.slots), "--model", self.model]
            self.processes.append(subprocess.Popen(cmd, start_new_session=True))
            self.urls.append(f"http://127.0.0.1:{port}/v1")
        deadline = time.monotonic() + 30
        for url in self.urls:
            while True:
                try:
                    with urllib.request.urlopen(url[: -len("/v1")] + "/health", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        self.__exit__(None, None, None)
                        raise RuntimeError(f"fleet endpoint {url} did not start") from None
                    time.sleep(0.05)
        return self

    @property
    def ideal_rate(self) -> float:
        """Requests per second the fleet serves at best: K × slots / latency."""
        return self.k * self.slots / self.latency

    def kill(self, index: int) -> None:
        """SIGKILL endpoint ``index`` (a replica dying mid-run)."""
        os.kill(self.processes[index].pid, signal.SIGKILL)
        self.processes[index].wait()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--model", default="fleet")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(serve(args.port, args.model, args.latency, args.slots))


if __name__ == "__main__":
    main()

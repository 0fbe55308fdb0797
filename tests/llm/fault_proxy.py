"""A small HTTP proxy of the tests' own between the client and a real vLLM server, injecting faults.

Each incoming POST gets a number (1, 2, …); ``schedule`` maps (number, JSON body) to a fault, everything else is
forwarded untouched. It also records what it saw: the JSON bodies forwarded and the most requests in flight.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

Fault = str  # "429" | "429-bare" (no Retry-After) | "500" | "delay" | "truncate" | "nonjson" | "unparseable"


class _QuietServer(ThreadingHTTPServer):
    """Says nothing when a client hangs up first (a killed or timed-out client is what the faults are about)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class FaultProxy:
    """Start with ``start()``; ``base_url`` is the proxy's /v1 URL; ``stop()`` shuts it down."""

    upstream: str  # e.g. http://127.0.0.1:8000/v1
    schedule: Callable[[int, dict[str, Any]], Fault | None] = lambda n, body: None
    delay_s: float = 0.0  # added to every forwarded request (to stretch a run)
    fault_delay_s: float = 3.0  # the "delay" fault: longer than the client's timeout
    port: int = 0  # 0: any free port; a fixed port lets a stopped proxy come back where it was
    bodies: list[dict[str, Any]] = field(default_factory=list)
    faults: list[tuple[int, Fault]] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FaultProxy:
        proxy = self
        target = urlparse(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with proxy._lock:
                    proxy._count += 1
                    number = proxy._count
                    proxy._in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy._in_flight)
                try:
                    fault = proxy.schedule(number, json.loads(body))
                    if fault is not None:
                        with proxy._lock:
                            proxy.faults.append((number, fault))
                        self._fault(fault, body)
                        return
                    time.sleep(proxy.delay_s)
                    status, headers, payload = self._forward(body)
                    with proxy._lock:
                        proxy.bodies.append(json.loads(body))
                    self._reply(status, payload, headers.get("Content-Type", "application/json"))
                finally:
                    with proxy._lock:
                        proxy._in_flight -= 1

            def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                try:
                    conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    return resp.status, dict(resp.getheaders()), resp.read()
                finally:
                    conn.close()

            def _reply(
                self, status: int, payload: bytes, ctype: str, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def _fault(self, fault: Fault, body: bytes) -> None:
                if fault == "429":
                    err = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
                    self._reply(429, err, "application/json", {"Retry-After": "0.2"})
                elif fault == "429-bare":
                    err = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
                    self._reply(429, err, "application/json")
                elif fault == "500":
                    self._reply(500, b'{"error": {"message": "boom"}}', "application/json")
                elif fault == "delay":
                    time.sleep(proxy.fault_delay_s)
                    try:  # the client gave up long ago
                        self._reply(503, b'{"error": {"message": "too late"}}', "application/json")
                    except OSError:
                        self.close_connection = True
                elif fault == "nonjson":
                    self._reply(200, b"<html>gateway says hello</html>", "application/json")
                elif fault == "unparseable":  # a well-formed completion whose text the client cannot parse
                    status, _, payload = self._forward(body)
                    reply = json.loads(payload)
                    for choice in reply.get("choices", []):
                        choice["message"]["content"] = "no score here"
                    self._reply(status, json.dumps(reply).encode(), "application/json")
                elif fault == "truncate":
                    _, _, payload = self._forward(body)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                else:
                    raise AssertionError(f"unknown fault {fault}")

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

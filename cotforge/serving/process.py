"""A child process cotforge starts, waits for until healthy, and stops by PID: the vLLM and Argilla servers.

The process runs in a session (process group) of its own, so :meth:`ManagedProcess.stop` signals it and every
worker it forked, and nothing else. Its stdout and stderr go to a log file the caller names; a start that fails
raises with the tail of that log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cotforge.errors import CotforgeError


class ProcessStartError(CotforgeError):
    """A managed process exited while starting or did not become healthy in time."""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file (empty when missing)."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``GET url`` answers 200 (any connection error or other status is False)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@dataclass
class ManagedProcess:
    """One command run in its own process group, its output written to ``log_path``.

    ``error`` is the exception class raised when it does not come up, so each server keeps its own error type.
    """

    name: str
    command: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    error: type[CotforgeError] = ProcessStartError
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> ManagedProcess:
        """Start the process (returns at once; :meth:`wait_healthy` waits for it)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(self.command),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, healthy: Callable[[], bool], timeout_s: float, poll_s: float = 0.5) -> None:
        """Call ``healthy()`` until it is true; stop the process and raise ``error`` (with the log's tail)
        when it exits first or ``timeout_s`` passes. An interrupted wait stops the process too."""
        if self.process is None:
            raise self.error(f"{self.name}: wait_healthy() before start()")
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    raise self.error(
                        f"{self.name} exited with code {code} while starting (log {self.log_path}):\n"
                        f"{tail(self.log_path)}"
                    )
                if healthy():
                    return
                time.sleep(poll_s)
        except BaseException:
            # Ctrl-C (or any error) during the wait: no caller holds the process yet to stop it later.
            self.stop()
            raise
        self.stop()
        raise self.error(
            f"{self.name} not healthy after {timeout_s:.0f}s (log {self.log_path}):\n{tail(self.log_path)}"
        )

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the process group by PID, then SIGKILL it after ``grace_s``."""
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

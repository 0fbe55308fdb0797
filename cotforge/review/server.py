"""A local Argilla 2.8 review server: Redis plus argilla-server in its own venv, started and stopped by PID.

argilla-server's pins (pydantic 2.9, fastapi 0.115, typer <0.10) clash with cotforge's, so it runs from a venv
of its own: ``$COTFORGE_ARGILLA_PYTHON``, else the checkout's ``.venv-argilla``, else one built on demand in
the user cache. Elasticsearch cannot run here; ``argilla_side/launch.py`` serves Argilla with an in-memory
search engine rebuilt from the SQLite database at every start. That makes it a single-node local review
server; production users point ``ARGILLA_API_URL``/``ARGILLA_API_KEY`` at their real Argilla instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cotforge.errors import CotforgeError
from cotforge.serving.cache_dirs import file_lock, user_cache_dir
from cotforge.serving.process import ManagedProcess, free_port, http_ok

LAUNCHER = Path(__file__).parent / "argilla_side" / "launch.py"
SERVER_REQUIREMENTS = ("argilla-server==2.8.0", "click<8.2")
STATE_FILE = "server.json"
_CHECKOUT = Path(__file__).resolve().parents[2]


class ReviewServerError(CotforgeError):
    """The local review server could not be found, built, started, or it died; the message says what to do."""


def _is_python(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_server_python(build: bool = True, log: Callable[[str], None] = print) -> Path:
    """The Python of a venv with argilla-server 2.8: env var, checkout venv, or the user cache (built if asked)."""
    env = os.environ.get("COTFORGE_ARGILLA_PYTHON")
    if env:
        path = Path(env).expanduser()
        if not _is_python(path):
            raise ReviewServerError(
                f"COTFORGE_ARGILLA_PYTHON={env} is not an executable Python; point it at the `bin/python` of a "
                "venv with argilla-server==2.8.0 installed, or unset it"
            )
        return path
    checkout = _CHECKOUT / ".venv-argilla" / "bin" / "python"
    if _is_python(checkout):
        return checkout
    venv = _cached_venv_dir()
    if (venv / ".complete").exists():
        return venv / "bin" / "python"
    if not build:
        raise ReviewServerError(
            f"no argilla-server venv found (COTFORGE_ARGILLA_PYTHON unset, {checkout} missing, {venv} not built)"
        )
    return build_server_venv(venv, log)


def _constraints_file() -> Path | None:
    path = _CHECKOUT / "constraints" / "argilla-server.txt"
    return path if path.is_file() else None


def _cached_venv_dir() -> Path:
    constraints = _constraints_file()
    text = "\n".join(SERVER_REQUIREMENTS) + (constraints.read_text(encoding="utf-8") if constraints else "")
    return user_cache_dir("venvs") / f"argilla-server-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def build_server_venv(venv: Path, log: Callable[[str], None] = print) -> Path:
    """Create a venv with argilla-server 2.8 (a few minutes, once); returns its Python."""
    with file_lock(venv.with_suffix(".lock")):
        if (venv / ".complete").exists():
            return venv / "bin" / "python"
        log(f"building the Argilla server venv in {venv} (argilla-server 2.8, a few minutes, once)…")
        shutil.rmtree(venv, ignore_errors=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        constraints = _constraints_file()
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [*pip, "--upgrade", "pip"],
            [*pip, *(["-c", str(constraints)] if constraints else []), *SERVER_REQUIREMENTS],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True)
            if result.returncode != 0:
                raise ReviewServerError(
                    f"building the Argilla server venv failed ({' '.join(step[:4])} …):\n{result.stderr[-2000:]}\n"
                    "install argilla-server==2.8.0 and click<8.2 into a venv yourself and set "
                    "COTFORGE_ARGILLA_PYTHON to its bin/python"
                )
        (venv / ".complete").touch()
        log("Argilla server venv ready")
        return venv / "bin" / "python"


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class ReviewServer:
    """Redis on a private loopback port + argilla-server with the in-memory engine, owner created with a key.

    The owner's API key reaches the server process through its environment only: never argv, logs or files.
    ``home`` holds the SQLite database (kept across restarts), logs, and ``server.json`` (URL and PIDs).
    """

    home: Path
    api_key: str = field(repr=False)
    port: int = 0
    redis_port: int = 0
    host: str = "127.0.0.1"
    owner: str = "owner"
    owner_password: str | None = field(default=None, repr=False)
    python: Path | None = None
    startup_timeout_s: float = 120.0
    log: Callable[[str], None] = print
    redis: ManagedProcess | None = field(default=None, init=False, repr=False)
    argilla: ManagedProcess | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def _argilla_log(self) -> Path:
        return self.log_dir / f"argilla-{self.port}.log"

    def start(self) -> ReviewServer:
        """Start Redis (waited for) and the Argilla process (see :meth:`wait_ready`)."""
        if len(self.api_key) < 8:
            raise ReviewServerError("the owner API key must have at least 8 characters")
        python = self.python or find_server_python(log=self.log)
        redis_bin = shutil.which("redis-server")
        if redis_bin is None:
            raise ReviewServerError(
                "redis-server not found on PATH; install it (Debian: apt-get install redis-server)"
            )
        self.home = self.home.expanduser().resolve()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.redis_port = self.redis_port or free_port()
        self.redis = ManagedProcess(
            "redis-server",
            [
                redis_bin,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            self.log_dir / f"redis-{self.redis_port}.log",
            error=ReviewServerError,
        ).start()
        try:
            self.redis.wait_healthy(lambda: _redis_ping(self.redis_port), timeout_s=20, poll_s=0.05)
        except BaseException:  # a failed or interrupted start leaves nothing running
            self.stop()
            raise
        env = {
            **os.environ,
            "ARGILLA_HOME_PATH": str(self.home),
            "ARGILLA_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "COTFORGE_ARGILLA_OWNER_API_KEY": self.api_key,
            "COTFORGE_ARGILLA_OWNER_PASSWORD": self.owner_password or "",
            # A stable JWT secret keeps reviewers logged in across restarts of the local server.
            "ARGILLA_AUTH_SECRET_KEY": self._auth_secret(),
        }
        # The client's own key must not leak into the server's environment under the name Argilla reads.
        env.pop("ARGILLA_API_KEY", None)
        cmd = [
            str(python),
            str(LAUNCHER),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--owner",
            self.owner,
        ]
        self.argilla = ManagedProcess(
            "argilla-server", cmd, self._argilla_log(), env=env, cwd=self.home, error=ReviewServerError
        ).start()
        return self

    def _auth_secret(self) -> str:
        """The server's session-signing secret, created once in ``home`` (owner-only file)."""
        path = self.home / "auth-secret"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text(encoding="utf-8").strip()

    def wait_ready(self) -> ReviewServer:
        """Poll ``/api/v1/version`` until it answers; raise with the log tail when the server dies or times out."""
        if self.argilla is None:
            raise ReviewServerError("ReviewServer.wait_ready() before start()")
        try:
            self.argilla.wait_healthy(
                lambda: http_ok(f"{self.url}/api/v1/version"), self.startup_timeout_s, 0.2
            )
        except BaseException:  # a failed or interrupted start leaves nothing running
            self.stop()
            raise
        self.write_state()
        return self

    def write_state(self) -> None:
        """``home/server.json``: URL and PIDs (no key), so people and scripts can find and stop the server."""
        state = {
            "url": self.url,
            "argilla_pid": self.argilla.pid if self.argilla else None,
            "redis_pid": self.redis.pid if self.redis else None,
            "redis_port": self.redis_port,
            "owner": self.owner,
        }
        (self.home / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    def alive(self) -> bool:
        return all(p is not None and p.alive() for p in (self.argilla, self.redis))

    def stop(self, grace_s: float = 15.0) -> None:
        """Stop Argilla, then Redis, each by its PID (process group)."""
        for process in (self.argilla, self.redis):
            if process is not None:
                process.stop(grace_s)
        (self.home / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> ReviewServer:
        try:
            return self.start().wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

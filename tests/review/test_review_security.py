"""The local review server is private: it listens on loopback only (Argilla and its Redis) and refuses a wrong
API key."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cotforge.review.server import ReviewServer

pytestmark = pytest.mark.integration


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc writes them


def test_server_and_redis_listen_on_loopback_only(argilla_server: ReviewServer) -> None:
    for port in (argilla_server.port, argilla_server.redis_port):
        addresses = _listening_addresses(port)
        assert addresses, f"nothing listens on port {port}"
        assert addresses <= LOOPBACK, f"port {port} listens on {addresses}, not loopback only"


@pytest.mark.parametrize("key", ["wrong-key", ""])
def test_server_refuses_a_wrong_key(argilla_server: ReviewServer, key: str) -> None:
    request = urllib.request.Request(f"{argilla_server.url}/api/v1/me", headers={"X-Argilla-Api-Key": key})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401

    good = urllib.request.Request(
        f"{argilla_server.url}/api/v1/me", headers={"X-Argilla-Api-Key": argilla_server.api_key}
    )
    with urllib.request.urlopen(good, timeout=10) as resp:
        assert resp.status == 200

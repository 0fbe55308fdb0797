"""Review fixtures: a real Argilla 2.8 server (Redis + argilla-server, in-memory search engine) for the session,
fresh dataset names, and annotators created through the owner's REST API.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator

import pytest
from review_builders import UIAnnotator, create_annotator

from cotforge.review.server import ReviewServer


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewServer]:
    """One real review server for the session, stopped by PID at the end."""
    server = ReviewServer(
        home=tmp_path_factory.mktemp("argilla-home"), api_key=secrets.token_urlsafe(18), log=lambda _: None
    )
    with server:
        yield server


@pytest.fixture()
def argilla_env(argilla_server: ReviewServer, monkeypatch: pytest.MonkeyPatch) -> ReviewServer:
    """The session server's URL and owner key in the environment (where cotforge reads them)."""
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.api_key)
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    return argilla_server


@pytest.fixture()
def dataset_name() -> str:
    """A fresh dataset name: tests share the session server."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def make_annotator(argilla_server: ReviewServer) -> Callable[[str, str], UIAnnotator]:
    """Create an annotator in a workspace through the owner's REST API and log them in (as the UI does)."""
    return lambda name, workspace: create_annotator(
        argilla_server.url, argilla_server.api_key, name, workspace
    )

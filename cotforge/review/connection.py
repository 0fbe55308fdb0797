"""Connecting to Argilla: URL from config or ``ARGILLA_API_URL``, key from ``ARGILLA_API_KEY`` only.

Every failure a user can fix becomes a :class:`CotforgeError` subclass that says what to do: server down,
missing or wrong key, a key without the rights push/pull need, a dataset with incompatible settings.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.errors import CotforgeError

if TYPE_CHECKING:
    import argilla as rg

DEFAULT_API_URL = "http://localhost:6900"
API_KEY_ENV = "ARGILLA_API_KEY"
API_URL_ENV = "ARGILLA_API_URL"


class ReviewConnectionError(CotforgeError):
    """Argilla cannot be reached (or the connection broke mid-operation)."""


class ReviewAuthError(CotforgeError):
    """The API key is missing, wrong, or lacks the role the operation needs."""


class ReviewSettingsError(CotforgeError):
    """The review dataset is missing or its settings do not match cotforge's."""


class ArgillaTarget(BaseModel):
    """Which Argilla server, workspace and dataset. The API key is never part of a config."""

    model_config = ConfigDict(extra="forbid")

    api_url: str | None = Field(default=None, description=f"Default: ${API_URL_ENV}, else {DEFAULT_API_URL}.")
    workspace: str = "cotforge"
    dataset: str | None = Field(default=None, description="Default: 'cotforge-<run folder name>'.")
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=2, ge=0, description="Connection retries per request.")

    def resolved_url(self) -> str:
        return (self.api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/")

    def dataset_name(self, run_name: str) -> str:
        return self.dataset or f"cotforge-{run_name}"


def _transport_errors() -> tuple[type[BaseException], ...]:
    import httpx

    return (httpx.TransportError,)


def connect(target: ArgillaTarget) -> rg.Argilla:
    """An SDK client for ``target`` with the key from ``ARGILLA_API_KEY``; clear errors when it cannot log in."""
    import argilla as rg
    from argilla._exceptions import ArgillaCredentialsError

    url = target.resolved_url()
    key = (os.environ.get(API_KEY_ENV) or "").strip()
    if not key:
        raise ReviewAuthError(
            f"{API_KEY_ENV} is not set: export the API key of an Argilla owner or admin "
            "(for `cotforge review serve`, the key you started it with)"
        )
    try:
        return rg.Argilla(api_url=url, api_key=key, timeout=int(target.timeout_s), retries=target.retries)
    except ArgillaCredentialsError:
        raise ReviewAuthError(
            f"Argilla at {url} rejected the API key in {API_KEY_ENV} (401 Unauthorized); export the key of an "
            "owner or admin user of that server"
        ) from None
    except _transport_errors() as exc:
        raise ReviewConnectionError(
            f"cannot reach Argilla at {url} ({type(exc).__name__}: {exc}); start a local one with "
            f"`cotforge review serve`, or point {API_URL_ENV} (or --api-url) at your server"
        ) from None


@contextmanager
def argilla_errors(url: str, doing: str) -> Iterator[None]:
    """Turn SDK/HTTP failures during ``doing`` into errors that say what happened and what to do."""
    from argilla._exceptions import ArgillaAPIError, ForbiddenError, UnauthorizedError

    try:
        yield
    except _transport_errors() as exc:
        raise ReviewConnectionError(
            f"lost the connection to Argilla at {url} while {doing} ({type(exc).__name__}: {exc}); "
            "check that the server is running and run the command again"
        ) from None
    except UnauthorizedError:
        raise ReviewAuthError(
            f"Argilla at {url} rejected the API key in {API_KEY_ENV} while {doing}"
        ) from None
    except ForbiddenError:
        raise ReviewAuthError(
            f"the key in {API_KEY_ENV} may not do this on {url} ({doing}): push and pull need an owner or admin "
            "key, not an annotator's"
        ) from None
    except ArgillaAPIError as exc:
        raise ReviewConnectionError(f"Argilla at {url} refused {doing}: {exc}") from None


def require_admin(client: rg.Argilla, url: str) -> None:
    """Annotators cannot create datasets or read everyone's responses: say so up front."""
    role = str(getattr(client.me.role, "value", client.me.role))
    if role not in ("owner", "admin"):
        raise ReviewAuthError(
            f"the key in {API_KEY_ENV} belongs to {client.me.username!r} with role {role!r} on {url}; "
            "push and pull need an owner or admin key"
        )


def find_workspace(client: rg.Argilla, name: str, create: bool) -> Any:
    """The workspace ``name``; created when ``create`` (an owner's right), else a clear error."""
    import argilla as rg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = client.workspaces(name)
    if workspace is not None:
        return workspace
    if not create:
        raise ReviewSettingsError(f"workspace {name!r} does not exist on {client.api_url}; push creates it")
    return rg.Workspace(name=name, client=client).create()


def find_dataset(client: rg.Argilla, name: str, workspace: str) -> rg.Dataset | None:
    """The dataset ``workspace/name``, or ``None``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if client.workspaces(workspace) is None:
            return None
        return client.datasets(name=name, workspace=workspace)


def require_dataset(client: rg.Argilla, name: str, workspace: str) -> rg.Dataset:
    dataset = find_dataset(client, name, workspace)
    if dataset is None:
        raise ReviewSettingsError(
            f"dataset {workspace}/{name} does not exist on {client.api_url}; run `cotforge review push` first "
            "(or pass --dataset/--workspace of the dataset you pushed)"
        )
    return dataset

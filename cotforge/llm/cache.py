"""The request cache: an embedded SQLite table from a request's hash to the model's response.

The key is SHA-256 over (model, messages, sampling params, JSON schema, attempt), so any change to what would be
sent is a miss. WAL mode and one commit per response mean a process killed at any point keeps every response it
had received; ``synchronous=NORMAL`` trades durability against power loss (not kills) for speed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotforge.errors import CotforgeError, OutputWriteError
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import TokenUsage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT,
    created_at REAL NOT NULL
)
"""
_LOOKUP_CHUNK = 500  # below SQLite's host-parameter limit


def request_key(
    model: str,
    messages: Sequence[dict[str, str]],
    sampling: dict[str, Any],
    schema: dict[str, Any] | None,
    attempt: int = 0,
) -> str:
    """The cache key of one request (hex SHA-256 of its canonical JSON)."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        "sampling": sampling,
        "schema": schema,
    }
    if attempt:
        payload["attempt"] = attempt
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    """A response as the cache holds it."""

    text: str
    usage: TokenUsage
    finish_reason: str | None


class RequestCache:
    """SQLite-backed response cache; ``refresh=True`` ignores stored answers but still stores new ones."""

    def __init__(self, path: Path, refresh: bool = False) -> None:
        self.path = path
        self.refresh = refresh
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            # Only a cache: nothing is lost by rebuilding it, but its answers are asked (and paid for) again.
            raise CotforgeError(
                f"{path}: the request cache cannot be opened ({exc}); move it aside "
                f"(`mv {path} {path}.bad`) and re-run to rebuild it, or turn the cache off (use_cache: false)",
                file=path,
            ) from None

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """Every stored response among ``keys`` (none when refreshing)."""
        if self.refresh:
            return {}
        found: dict[str, CachedResponse] = {}
        pending = list(keys)
        for start in range(0, len(pending), _LOOKUP_CHUNK):
            chunk = pending[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT key, text, prompt_tokens, completion_tokens, finish_reason FROM responses "
                f"WHERE key IN ({marks})",
                chunk,
            )
            for key, text, pt, ct, finish in rows:
                found[key] = CachedResponse(text, TokenUsage(prompt_tokens=pt, completion_tokens=ct), finish)
        return found

    def get(self, key: str) -> CachedResponse | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, model: str, response: CachedResponse) -> None:
        """Store a response; a full disk is an :class:`OutputWriteError` naming the cache (stored rows are kept)."""
        row = (
            key,
            model,
            response.text,
            response.usage.prompt_tokens,
            response.usage.completion_tokens,
            response.finish_reason,
            time.time(),
        )
        try:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        except sqlite3.OperationalError as exc:
            # SQLite rolls the failed insert back: the file stays a valid cache of the answers stored so far.
            raise OutputWriteError(
                f"{self.path}: could not store a response ({exc}); the answers stored so far are kept. Free "
                "space and re-run the same command",
                file=self.path,
            ) from None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def open_cache(folder: RunFolder, use_cache: bool, refresh: bool) -> RequestCache | None:
    """The run's request cache (``cache.sqlite``), or none when caching is off."""
    return RequestCache(folder.path(RunFiles.CACHE), refresh=refresh) if use_cache else None

"""Failed model calls are never final: the option that accepts them, and the retry of the rest on a re-run.

A request that failed in transport (server down, timeouts, 5xx after every retry) says nothing about the record:
it is written to the stage's rejects file with reason ``request_failed`` so nothing is lost, the stage exits with
"completed with N failures" (see :class:`cotforge.errors.FailedRecordsError`), and the next run takes those
records out of the rejects file and asks again. A reject for the record itself (unparseable output after every
attempt, a request the server refused as bad) stays final.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from cotforge.runfolder import AppendLog, atomic_write_jsonl, read_jsonl
from cotforge.schemas import RejectRecord

FAILED_REQUEST = "request_failed"


class FailurePolicy(BaseModel):
    """The config field every model-calling stage shares."""

    allow_failures: bool = Field(
        default=False,
        description="Finish with exit 0 even when some model calls failed (they stay in the rejects file); "
        "without it such a run exits 3 and a re-run retries them.",
    )


def is_failed_request(reasons: Iterable[str]) -> bool:
    """True for a reject whose request failed in transport (to be retried), not for a reject of the record."""
    return FAILED_REQUEST in reasons


def take_failed_requests(path: Path, stage: str) -> set[str]:
    """Remove ``stage``'s failed-request rejects from the rejects file at ``path``; return their record ids.

    The file is rewritten atomically, so a crash leaves either the old list (retried next time) or the new one.
    """
    AppendLog(path).close()  # cuts a line torn by a kill before we read
    kept: list[RejectRecord] = []
    retry: set[str] = set()
    for record in read_jsonl(path, RejectRecord):
        if record.stage == stage and record.record_id and is_failed_request(record.reasons):
            retry.add(record.record_id)
        else:
            kept.append(record)
    if retry:
        atomic_write_jsonl(path, kept)
    return retry

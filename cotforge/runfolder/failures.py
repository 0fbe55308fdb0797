"""Failed model calls are never final: the option that accepts them, and the retry of the rest on a re-run.

A request that failed in transport (server down, timeouts, 5xx after every retry) says nothing about the record:
it is written to the stage's rejects file with reason ``request_failed`` so nothing is lost, the stage exits with
"completed with N failures" (see :class:`cotforge.errors.FailedRecordsError`), and the next run takes those
records out of the rejects file and asks again. A reject for the record itself (unparseable output after every
attempt, a request the server refused as bad) stays final — unless the user asks for it with ``retry_failed``
(`cotforge run --retry-failed STEP`, or the stage's ``--retry-failed``): then the records rejected for a
retryable reason (:data:`RETRYABLE_REASONS`) are taken out of the rejects file and asked again, continuing with
the attempts (seeds) after those already made, so a cached unparseable answer is not simply served again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from cotforge.runfolder.files import AppendLog, atomic_write_jsonl, read_jsonl
from cotforge.schemas import RejectRecord

FAILED_REQUEST = "request_failed"
# What a new attempt may fix: the transport, or a malformed answer (a re-ask with another seed). Not a request
# the server refused as bad (request_rejected) nor a prompt longer than the context (prompt_too_long).
RETRYABLE_REASONS = frozenset({FAILED_REQUEST, "parse_failed"})


class FailurePolicy(BaseModel):
    """The config field every model-calling stage shares."""

    allow_failures: bool = Field(
        default=False,
        description="Finish with exit 0 even when some model calls failed (they stay in the rejects file); "
        "without it such a run exits 3 and a re-run retries them.",
    )


class RetryPolicy(FailurePolicy):
    """The config fields of a stage whose rejected records can be asked again (generate, sample, judge)."""

    retry_failed: bool = Field(
        default=False,
        description="Ask again the records earlier runs rejected for a retryable reason (request failed, "
        "unparseable answer), with seeds not tried before; nothing else is redone.",
        json_schema_extra={"operational": True},
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


def is_retryable(reasons: Iterable[str]) -> bool:
    """True for a reject that another attempt may fix (see :data:`RETRYABLE_REASONS`)."""
    return any(reason in RETRYABLE_REASONS for reason in reasons)


def next_attempt(record: RejectRecord) -> int:
    """The first attempt a reject's record has not tried yet (its raw ``next_attempt``, else one per output)."""
    raw = record.raw if isinstance(record.raw, dict) else {}
    return int(raw.get("next_attempt", len(raw.get("outputs") or [])))


def take_retryable_rejects(path: Path, stage: str) -> list[RejectRecord]:
    """Remove ``stage``'s retryable rejects from the rejects file at ``path`` and return them.

    Atomic like :func:`take_failed_requests`; a record asked again and rejected again is appended anew by the
    stage, so the file lists each record at most once.
    """
    AppendLog(path).close()
    kept: list[RejectRecord] = []
    taken: list[RejectRecord] = []
    for record in read_jsonl(path, RejectRecord):
        retry = record.stage == stage and record.record_id and is_retryable(record.reasons)
        (taken if retry else kept).append(record)
    if taken:
        atomic_write_jsonl(path, kept)
    return taken

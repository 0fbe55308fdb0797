"""The one hierarchy of errors cotforge raises for the user.

Every error a user can cause (a bad input file, a missing stage output, a bad config) subclasses
:class:`CotforgeError`; the CLI prints its message as one line and exits non-zero. Anything else that escapes
(a bare ``ValueError``, a ``KeyError``) is a bug: the CLI says so in one line (exit 70) and shows the
traceback under ``cotforge --debug``. The structured fields say where the
problem is, so callers and tests need not parse the message.
"""

from __future__ import annotations

from pathlib import Path

# Exit statuses of the CLI: a user error, a stage that finished but left failed records behind, and a bug
# (an exception that is not a user's error; sysexits' EX_SOFTWARE).
EXIT_USER_ERROR = 1
EXIT_FAILED_RECORDS = 3
EXIT_BUG = 70


class CotforgeError(RuntimeError):
    """An error whose message is written for the user: what went wrong and what to do.

    ``stage``, ``file``, ``line`` and ``record_id`` locate the problem when known.
    """

    exit_code = EXIT_USER_ERROR

    def __init__(
        self,
        message: str,
        *,
        stage: str | None = None,
        file: str | Path | None = None,
        line: int | None = None,
        record_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.file = None if file is None else str(file)
        self.line = line
        self.record_id = record_id


class StageInputError(CotforgeError):
    """A stage's input is missing, empty, unreadable, or the run folder cannot be used."""


class OutputWriteError(CotforgeError):
    """An output file could not be written (a full disk, a read-only folder); nothing half-written is left."""


class ConfigError(CotforgeError):
    """A config file, pipeline file or option that cannot be used."""


class SuiteError(ConfigError):
    """An evaluation prompt suite that cannot be used: unknown format, columns that match no layout, a label
    outside the allowed values, or a Hub id that is not in the local cache."""


class FailedRecordsError(CotforgeError):
    """A stage finished, but some model calls failed: their records are not final and a re-run retries them.

    Raised after the stage's outputs and manifest are written, so nothing finished is lost.
    """

    exit_code = EXIT_FAILED_RECORDS

    def __init__(self, stage: str, failed: int, rejects_file: str | None = None) -> None:
        where = f" (listed in {rejects_file})" if rejects_file else ""
        super().__init__(
            f"{stage}: completed with {failed} failures{where}; re-run the stage to retry them, or pass "
            "allow_failures (`--allow-failures`, `--set allow_failures=true`) to accept the gaps",
            stage=stage,
            file=rejects_file,
        )
        self.failed = failed

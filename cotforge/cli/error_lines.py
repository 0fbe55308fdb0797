"""What the CLI says about an exception: one line naming where the problem is and what to do, and the exit
status. Pure: :func:`describe` decides the words, :mod:`cotforge.cli.common` prints them.

A user's error (:class:`CotforgeError`, an invalid config model, an operating-system error, memory running
out) says what is wrong; anything else is a bug in cotforge and says so, with where it happened and how to
see the traceback (``--debug``).
"""

from __future__ import annotations

import errno
import traceback
from pathlib import Path

from cotforge.errors import EXIT_BUG, EXIT_USER_ERROR, CotforgeError
from cotforge.safe_text import elided, visible

# Config models a command builds from its options; a ValidationError of any other model is a bug.
CONFIG_MODEL_SUFFIXES = ("Config", "Settings", "Step", "Spec")
# An error line longer than this (a 6,500-character prompt quoted in it) keeps its start and its advice.
MAX_MESSAGE_CHARS = 2_000
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# What to do about the operating-system errors a user can meet (a run folder on a full disk, a file where a
# folder belongs); a finished stage's outputs are kept, so "run it again" resumes.
_OS_ADVICE = {
    errno.EEXIST: "a file is in the way of a folder cotforge writes there: move it away",
    errno.ENOTDIR: "a file is in the way of a folder in this path: move it away or choose another path",
    errno.EISDIR: "a folder is where a file is expected: move it away or name the file",
    errno.EACCES: "no permission there: fix the folder's permissions or choose another path",
    errno.EPERM: "not permitted there: fix the folder's permissions or choose another path",
    errno.EROFS: "the file system is read-only: choose a writable run folder",
    errno.ENOSPC: "the disk is full: free space and run the command again (finished work is kept)",
    errno.EDQUOT: "the disk quota is used up: free space and run the command again (finished work is kept)",
    errno.ENAMETOOLONG: "a name in this path is too long for the file system: choose a shorter path",
    errno.EMFILE: "too many files open: raise the limit (`ulimit -n`) and run the command again",
}


def located(exc: CotforgeError) -> str:
    """The error's message, with its stage, file, line and record added where the message lacks them."""
    message = str(exc)
    if exc.file and exc.file not in message:
        where = f"{exc.file}:{exc.line}" if exc.line is not None else exc.file
        message = f"{where}: {message}"
    if exc.stage and not message.startswith(exc.stage) and f"`{exc.stage}`" not in message:
        message = f"{exc.stage}: {message}"
    if exc.record_id and exc.record_id not in message:
        message = f"{message} (record {exc.record_id})"
    return message


def _validation_line(exc: object) -> str:
    errors = exc.errors()  # type: ignore[attr-defined]
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in errors)
    return f"invalid configuration ({exc.title}): {problems}"  # type: ignore[attr-defined]


def _where_in_cotforge(exc: BaseException) -> str:
    """``cotforge/pairs/build.py:123`` of the innermost frame in the package, for a bug report."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        if path.is_relative_to(_PACKAGE_ROOT):
            return f"{path.relative_to(_PACKAGE_ROOT.parent)}:{frame.lineno}"
    return "outside cotforge"


def _bug_line(exc: BaseException, command: str) -> str:
    detail = visible(str(exc))
    said = f" ({elided(detail, 300)})" if detail else ""
    again = " ".join(["cotforge --debug", *command.split(" ")[1:], "…"])
    return (
        f"unexpected {type(exc).__name__}{said} at {_where_in_cotforge(exc)}: this is a bug "
        f"in cotforge, not in your input; run `{again}` to see the traceback, and report it"
    )


def describe(exc: BaseException, command: str) -> tuple[str, int]:
    """The one line (line breaks in it written as ``\\n``) and the exit status."""
    from pydantic import ValidationError

    if isinstance(exc, CotforgeError):
        message, code = located(exc), exc.exit_code
    elif isinstance(exc, ValidationError) and exc.title.endswith(CONFIG_MODEL_SUFFIXES):
        message, code = _validation_line(exc), EXIT_USER_ERROR
    elif isinstance(exc, OSError):
        # A read-only run folder, a full disk, a folder where a file belongs: the machine, not the code.
        what = exc.strerror or str(exc) or type(exc).__name__
        named = ": ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        message = f"{named}: {what}" if named else f"{what} ({type(exc).__name__})"
        advice = _OS_ADVICE.get(exc.errno) if exc.errno is not None else None
        message, code = (f"{message}; {advice}" if advice else message), EXIT_USER_ERROR
    elif isinstance(exc, MemoryError):
        message = "ran out of memory; use a smaller input (--limit) or a machine with more memory"
        code = EXIT_USER_ERROR
    else:
        message, code = _bug_line(exc, command), EXIT_BUG
    return elided(visible(message), MAX_MESSAGE_CHARS), code

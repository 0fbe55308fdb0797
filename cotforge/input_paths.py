"""Paths a user names as input: a regular file or a folder, or ``-`` (stdin) where a reader takes it.

Anything else (a FIFO, a device such as ``/dev/zero``, a socket, a broken or looping symbolic link, a compressed
file) is refused with a message naming the path and what to do, before a byte is read. Streams and files read
whole are read with a size limit, so a runaway input cannot eat the machine's memory.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from cotforge.errors import CotforgeError

STDIN = "-"
MAX_STDIN_BYTES = 256 * 1024**2
MAX_WHOLE_FILE_BYTES = 1024**3
# Compressed files cotforge does not unpack: suffix → the command that does.
COMPRESSED = {
    ".gz": "gunzip -k",
    ".bz2": "bunzip2 -k",
    ".xz": "unxz -k",
    ".zst": "unzstd",
    ".lz4": "unlz4",
    ".zip": "unzip",
    ".7z": "7z x",
    ".tar": "tar -xf",
    ".tgz": "tar -xzf",
}
_NOT_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class InputPathError(CotforgeError):
    """An input path that is not a readable regular file or folder, or input over its size limit."""


def _size(n: int) -> str:
    return f"{n / 1024**3:g} GiB" if n >= 1024**3 else f"{n / 1024**2:g} MiB"


def check_input_path(
    spec: str | Path, what: str = "input", *, folder: bool = True, stdin: bool = False
) -> Path:
    """``spec`` as a path to a regular file (or a folder when ``folder``), else :class:`InputPathError`.

    ``stdin`` says whether the caller reads ``-`` as standard input: then ``-`` is returned as is; otherwise
    it is refused with the hint to save the data to a file.
    """
    name = str(spec)
    if name == STDIN:
        if stdin:
            return Path(STDIN)
        raise InputPathError(f"-: this {what} cannot be read from stdin; save it to a file and pass its path")
    path = Path(spec)
    link = f" (a symbolic link to {os.readlink(path)})" if path.is_symlink() else ""
    try:
        mode = path.stat().st_mode  # follows links: the kind of what would be read
    except FileNotFoundError:
        if link:
            raise InputPathError(f"{name}{link}: the link's target does not exist", file=name) from None
        raise InputPathError(f"{name}: file not found", file=name) from None
    except OSError as exc:  # a link loop, a name too long, a parent that is a file, no permission
        raise InputPathError(f"{name}{link}: cannot be read ({exc.strerror or exc})", file=name) from None
    if stat.S_ISDIR(mode):
        if folder:
            return path
        raise InputPathError(f"{name}{link}: is a folder; this {what} must be a file", file=name)
    for test, kind in _NOT_FILES:
        if test(mode):
            hint = ", or pipe it to `-` (stdin)" if stdin else ""
            raise InputPathError(
                f"{name}{link}: is {kind}, not a regular file; save the data to a file and pass that{hint}",
                file=name,
            )
    suffix = path.suffix.lower()
    if suffix in COMPRESSED:
        raise InputPathError(
            f"{name}: a compressed file ({suffix}); cotforge reads uncompressed files: unpack it first "
            f"(`{COMPRESSED[suffix]} {name}`) and pass the result",
            file=name,
        )
    if not os.access(path, os.R_OK):
        raise InputPathError(f"{name}{link}: cannot be read (permission denied)", file=name)
    return path


def read_stdin(limit: int | None = None) -> bytes:
    """All of standard input, refused past ``limit`` bytes (default :data:`MAX_STDIN_BYTES`) or when stdin is a
    terminal (it would wait forever)."""
    limit = MAX_STDIN_BYTES if limit is None else limit
    stream = sys.stdin
    if stream is None or stream.isatty():
        raise InputPathError(
            "-: stdin is a terminal, not data; pipe a file into it (`... - < prompts.jsonl`)"
        )
    data = stream.buffer.read(limit + 1)
    if len(data) > limit:
        raise InputPathError(f"-: stdin holds more than {_size(limit)}; save it to a file and pass its path")
    return data


def read_whole_file(path: Path, limit: int | None = None) -> bytes:
    """A file's bytes, refused when it is over ``limit`` (default :data:`MAX_WHOLE_FILE_BYTES`; checked before
    reading, and while reading)."""
    limit = MAX_WHOLE_FILE_BYTES if limit is None else limit
    if path.stat().st_size > limit:
        raise InputPathError(
            f"{path}: {_size(path.stat().st_size)}, over the {_size(limit)} cotforge reads whole; "
            "split it, or use JSON Lines (read line by line)",
            file=path,
        )
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputPathError(f"{path}: grew past {_size(limit)} while being read", file=path)
    return data

"""Shared CLI pieces: the ``--run`` option, the console, and the error boundary every command uses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cotforge.errors import CotforgeError


def plain_or_terminal_console(stderr: bool = False) -> Console:
    """A terminal console as rich makes it; elsewhere (logs, CI) one that does not wrap at 80 columns.

    Off a terminal rich assumes 80 columns and breaks plain lines mid-path; logs are read in files.
    """
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, soft_wrap=True, width=max(probe.width, 200))


console = plain_or_terminal_console()
err_console = plain_or_terminal_console(stderr=True)

RunOption = Annotated[
    Path,
    typer.Option(
        "--run", "-r", help="Run folder: the stage reads its inputs from it and writes outputs into it."
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


class CLIError(CotforgeError):
    """A usage error found by the CLI itself."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Print a user's error as one clear line and exit non-zero; let a bug show its traceback.

    User errors are :class:`CotforgeError` (exit 1; 3 for a stage that completed with failed records), an
    invalid config model built from the options, and an operating-system error on a named file (a read-only
    run folder, a folder where a file is expected). Anything else, a bare ``ValueError`` included, is a bug.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        try:
            return func(*args, **kwargs)
        except CotforgeError as exc:
            fail(str(exc), code=exc.exit_code)
        except ValidationError as exc:
            if not exc.title.endswith(_CONFIG_SUFFIXES):
                raise
            fail(f"invalid configuration ({exc.title}):\n{exc}")
        except OSError as exc:
            if exc.filename is None:
                raise
            fail(f"{exc.filename}: {exc.strerror or exc}")

    return wrapper  # type: ignore[return-value]


# Config models a command builds from its options; a ValidationError of any other model is a bug.
_CONFIG_SUFFIXES = ("Config", "Settings", "Step", "Spec")


def counts_table(title: str, rows: dict[str, Any]) -> Table:
    """A two-column summary table."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table

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

console = Console()
err_console = Console(stderr=True)

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
    """Turn the errors cotforge raises for bad inputs into a clear message and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        try:
            return func(*args, **kwargs)
        except (CotforgeError, FileNotFoundError, PermissionError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                fail(f"invalid configuration or record:\n{exc}")
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def counts_table(title: str, rows: dict[str, Any]) -> Table:
    """A two-column summary table."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table

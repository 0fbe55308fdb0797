"""Shared CLI pieces: the ``--run`` option, the consoles, and the one error boundary every command passes.

The consoles print every string as plain text (no rich markup, emoji codes or highlighting; control
characters shown escaped), so a prompt, a kind, a source or a path is printed as it is and cannot break or
drive the terminal. Styled words are :class:`rich.text.Text` pieces the code builds itself.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import typer.main
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from cotforge.cli.error_lines import MAX_MESSAGE_CHARS, describe
from cotforge.safe_text import elided, visible

DEBUG_ENV = "COTFORGE_DEBUG"


class PlainConsole(Console):
    """A rich console that renders every string as plain, visible text on one line.

    Tables, titles and ``print`` arguments all pass through :meth:`render_str`, so this one override covers
    them; markup a caller asks for is ignored on purpose, and a line break inside a value is shown as ``\\n``
    (so no value can print a second, forged line): print two lines with two calls.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(visible(text), **kwargs)


def plain_or_terminal_console(stderr: bool = False) -> PlainConsole:
    """A terminal console as rich makes it; elsewhere (logs, CI) one that does not wrap at 80 columns.

    Off a terminal rich assumes 80 columns and breaks plain lines mid-path; logs are read in files.
    """
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return PlainConsole(stderr=stderr, markup=False, emoji=False, highlight=False)
    return PlainConsole(
        stderr=stderr, soft_wrap=True, width=max(probe.width, 200), markup=False, emoji=False, highlight=False
    )


console = plain_or_terminal_console()
err_console = plain_or_terminal_console(stderr=True)


def plain(value: object, style: str = "") -> Text:
    """A user's value as a rich ``Text`` (for tables and styled lines): never markup, controls visible."""
    return Text(visible(value), style=style)


def styled(*parts: str | tuple[str, str]) -> Text:
    """One line of plain pieces and ``(text, style)`` pieces; every piece's text is shown as it is."""
    return Text.assemble(*(plain(p) if isinstance(p, str) else plain(*p) for p in parts))


RunOption = Annotated[
    Path,
    typer.Option(
        "--run", "-r", help="Run folder: the stage reads its inputs from it and writes outputs into it."
    ),
]

F = TypeVar("F", bound=Callable[..., Any])
# Exits and usage errors are the command line's own answers, printed by typer; they pass the boundary.
_PASSED_ON = (typer.Exit, typer.Abort, typer.TyperException)


def fail(message: str, code: int = 1, command: str | None = None) -> NoReturn:
    """Print ``message`` as one error line on stderr (``cotforge <command>: error: …``) and exit with ``code``.

    ``command`` defaults to the command being run.
    """
    if command is None:
        ctx = typer.main.get_current_context(silent=True)
        command = ctx.command_path if ctx is not None else None
    where = f"{command}: " if command else ""
    err_console.print(
        Text.assemble(
            (where, "bold"), ("error:", "bold red"), " ", elided(visible(message), MAX_MESSAGE_CHARS)
        ),
        soft_wrap=True,
    )
    raise typer.Exit(code)


def debugging(ctx: Any = None) -> bool:
    """Whether ``--debug`` was given (or ``COTFORGE_DEBUG`` is set): errors then show their traceback."""
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no"):
        return True
    ctx = ctx or typer.main.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def report_error(exc: Exception, command: str | None, ctx: Any = None) -> NoReturn:
    """The error boundary: one line naming the command and what to do, and its exit status.

    Under ``--debug`` the exception goes on, with its traceback.
    """
    if debugging(ctx):
        raise exc
    message, code = describe(exc, command or "cotforge")
    fail(message, code=code, command=command)


def friendly_errors(func: F) -> F:
    """Let every exception of ``func`` through :func:`report_error` (the command's own boundary)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _PASSED_ON:
            raise
        except Exception as exc:
            ctx = typer.main.get_current_context(silent=True)
            report_error(exc, ctx.command_path if ctx is not None else None, ctx)

    return wrapper  # type: ignore[return-value]


class ErrorBoundaryGroup(TyperGroup):
    """The root command group: whatever escapes a command (or its option callbacks) meets the boundary."""

    _ARGV = "cotforge.argv"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[self._ARGV] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _PASSED_ON:
            raise
        except Exception as exc:
            report_error(exc, self.command_path(ctx), ctx)

    def command_path(self, ctx: Any) -> str:
        """``cotforge review push``: the command the arguments named (as far as they name commands)."""
        words = [ctx.command_path]
        group: Any = self
        for arg in ctx.meta.get(self._ARGV, []):
            if arg.startswith("-") and not words[1:]:
                continue  # a root option such as --debug
            commands = getattr(group, "commands", None)
            if not commands or arg not in commands:
                break
            words.append(arg)
            group = commands[arg]
        return " ".join(words)


def counts_table(title: str, rows: dict[str, Any]) -> Table:
    """A two-column summary table."""
    table = Table(title=plain(title), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in rows.items():
        table.add_row(plain(key), plain(value))
    return table

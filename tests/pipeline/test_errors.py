"""One error hierarchy: the CLI prints a user's error as one line; a bug says it is one (traceback under --debug)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from cotforge.cli.common import friendly_errors
from cotforge.errors import EXIT_BUG, EXIT_FAILED_RECORDS, CotforgeError, FailedRecordsError
from cotforge.tagged import TaggedFormatError
from cotforge.train.segments import SegmentError

pytestmark = pytest.mark.unit
runner = CliRunner()


def _app(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @friendly_errors
    def boom() -> None:
        raise error

    return app


def test_user_errors_are_one_line_with_their_exit_status() -> None:
    result = runner.invoke(_app(CotforgeError("x.jsonl:3: bad", file="x.jsonl", line=3)), [])
    assert result.exit_code == 1 and "x.jsonl:3: bad" in result.output and "Traceback" not in result.output
    result = runner.invoke(_app(FailedRecordsError("judge", 2, "judge.rejects.jsonl")), [])
    assert result.exit_code == EXIT_FAILED_RECORDS and "completed with 2 failures" in result.output
    result = runner.invoke(_app(PermissionError(13, "Permission denied", "/runs/r/pairs.jsonl")), [])
    assert result.exit_code == 1 and "/runs/r/pairs.jsonl: Permission denied" in result.output


def test_a_bare_value_error_is_a_bug_not_a_users_error() -> None:
    result = runner.invoke(_app(ValueError("internal")), [])
    assert result.exit_code == EXIT_BUG and "this is a bug in cotforge" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(_app(ValueError("internal")), [], env={"COTFORGE_DEBUG": "1"})
    assert isinstance(result.exception, ValueError)  # --debug (or COTFORGE_DEBUG) keeps the traceback


def test_every_user_facing_error_subclasses_the_base() -> None:
    assert issubclass(TaggedFormatError, CotforgeError) and issubclass(SegmentError, CotforgeError)
    error = TaggedFormatError("no_think_close", "no </think>")
    assert error.code == "no_think_close" and error.file is None

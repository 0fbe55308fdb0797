"""A finished run built by the real server-free stages (see tests/pipeline/conftest.py) and CLI helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from tests.pipeline.conftest import build_finished_run

runner = CliRunner()


@pytest.fixture()
def finished(tmp_path: Path) -> Path:
    root = tmp_path / "R"
    build_finished_run(root)
    return root


def cli(*args: str) -> Any:
    """The real CLI, in process: the result's exit code, output and stderr."""
    return runner.invoke(app, [str(a) for a in args])


def refused(result: Any, *needles: str) -> str:
    """Assert a one-line error (exit 1, no traceback) that names every needle; returns the line."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    line = result.stderr.strip()
    assert "Traceback" not in result.output and "\n" not in line, result.output
    assert all(n in line for n in needles), line
    return str(line)

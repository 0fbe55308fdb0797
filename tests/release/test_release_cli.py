"""`cotforge release build` through the installed console script, and its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from run_factory import BuiltRun
from typer.testing import CliRunner

from cotforge.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.unit
def test_release_build_command_writes_the_selected_configs(built_run: BuiltRun, tmp_path: Path) -> None:
    out = tmp_path / "published"
    done = subprocess.run(
        [sys.executable, "-m", "cotforge", "release", "build", "--run", str(built_run.root), "--out", str(out),
         "--subset", "sft", "--subset", "preference", "--licence", "cc-by-4.0", "--repo-id", "me/cot"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "sft rows" in done.stdout and "preference rows" in done.stdout and "rejects (left out)" in done.stdout
    )
    assert not list(out.glob("rejects/*.parquet")) and len(list(out.glob("sft/*.parquet"))) == 1
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card and 'load_dataset("me/cot", "sft"' in card


@pytest.mark.unit
def test_release_build_errors_are_one_clear_line(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = tmp_path / "run"
    empty.mkdir()
    result = runner.invoke(app, ["release", "build", "--run", str(empty)], terminal_width=200)
    assert result.exit_code == 1 and "run `cotforge generate" in result.output
    result = runner.invoke(app, ["release", "build", "--run", str(empty), "--subset", "everything"])
    assert result.exit_code == 1 and "invalid `release build` config" in result.output
    assert "--subset: configs.0" in result.output and "'sft', 'preference' or 'rejects'" in result.output

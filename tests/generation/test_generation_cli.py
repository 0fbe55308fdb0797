"""The model-asking commands' command line: help, flags, and config errors that name the file at fault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app

pytestmark = pytest.mark.unit


def test_generate_help_from_the_installed_console_script() -> None:
    script = Path(sys.executable).parent / "cotforge"
    done = subprocess.run([str(script), "generate", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for flag in (
        "--model",
        "--base-url",
        "--backend",
        "--mode",
        "--no-cache",
        "--refresh",
        "--retry-rejects",
    ):
        assert flag in done.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("teacher: {model: tiny, concurrency: [\n", "not valid YAML"),  # not YAML
        ("- just\n- a list\n", "expected a mapping"),
        ("teacher: {model: tiny}\noutput_mod: tagged\n", "output_mod"),  # a misspelt key
        ("teacher: {model: tiny, concurrency: 0}\n", "concurrency"),  # a value out of range
        ("validation: {min_step: 3}\n", "min_step"),
    ],
)
def test_a_bad_config_file_fails_naming_the_file(run_dir: Path, content: str, expected: str) -> None:
    config = run_dir / "bad-generate.yaml"
    config.write_text(content)
    result = CliRunner().invoke(
        app, ["generate", "--run", str(run_dir), "--config", str(config), "--model", "tiny"]
    )
    assert result.exit_code == 1
    assert str(config) in result.output and expected in result.output
    assert "Traceback" not in result.output


def test_a_missing_config_file_or_model_is_a_clear_error(run_dir: Path) -> None:
    missing = run_dir / "nope.yaml"
    result = CliRunner().invoke(app, ["generate", "--run", str(run_dir), "--config", str(missing)])
    assert result.exit_code == 1 and str(missing) in result.output
    result = CliRunner().invoke(app, ["generate", "--run", str(run_dir)])
    assert result.exit_code == 1 and "teacher.model" in result.output and "--model" in result.output
    bad = run_dir / "bad-validate.yaml"
    bad.write_text("min_stepz: 2\n")
    result = CliRunner().invoke(app, ["validate", "--run", str(run_dir), "--config", str(bad)])
    assert result.exit_code == 1 and str(bad) in result.output and "min_stepz" in result.output


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("augment", []),
        ("sample", ["--model", "tiny"]),
        ("judge", []),
        ("eval", ["--model", "tiny"]),
    ],
)
def test_every_stage_names_its_config_file_on_a_misspelt_key(
    run_dir: Path, command: str, extra: list[str]
) -> None:
    config = run_dir / f"bad-{command}.yaml"
    config.write_text("limt: 3\n")
    result = CliRunner().invoke(app, [command, "--run", str(run_dir), "--config", str(config), *extra])
    assert result.exit_code == 1, result.output
    assert str(config) in result.output and "limt" in result.output
    assert "Traceback" not in result.output

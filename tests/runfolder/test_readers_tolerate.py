"""Readers of ledgers, usage lines and Parquet files: fresh by content, tolerant of what they do not know, and a
named error (never a traceback, never after writing) for what they cannot read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cotforge.curation.ledger import LEDGER_FILE, ledger_is_stale
from cotforge.runfolder import RunFiles
from tests.runfolder.conftest import cli, refused

pytestmark = pytest.mark.unit


def _first_judgment(run: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((run / RunFiles.JUDGMENTS).read_text().splitlines()[0])


def test_trace_rebuilds_a_ledger_whose_sources_changed_whatever_the_file_times(finished: Path) -> None:
    assert cli("trace", finished).exit_code == 0
    ledger = finished / LEDGER_FILE
    assert not ledger_is_stale(finished)
    first = _first_judgment(finished)
    path = finished / RunFiles.JUDGMENTS
    lines = path.read_text().splitlines()
    path.write_text("\n".join([json.dumps({**first, "h_f": 0.123}), *lines[1:]]) + "\n")
    old = ledger.stat().st_mtime - 3600
    os.utime(path, (old, old))  # edited, then given an older time than the ledger (a restore, a copy)
    assert ledger_is_stale(finished)
    result = cli("trace", finished, first["candidate_id"])
    assert result.exit_code == 0 and "f 0.12" in result.output, result.output
    assert not ledger_is_stale(finished)


def test_a_half_copied_ledger_is_rebuilt_and_a_half_copied_release_file_is_named(finished: Path) -> None:
    assert cli("release", "build", "--run", finished).exit_code == 0
    assert cli("trace", finished).exit_code == 0
    ledger = finished / LEDGER_FILE
    ledger.write_bytes(ledger.read_bytes()[:100])
    assert ledger_is_stale(finished)
    assert cli("trace", finished).exit_code == 0 and not ledger_is_stale(finished)
    (parquet,) = (finished / "release" / "preference").glob("*.parquet")
    parquet.write_bytes(parquet.read_bytes()[:300])
    refused(cli("trace", finished, "--rebuild"), str(parquet), "not the file", "cotforge release build")
    # The next release reads the previous one for its changelog: named too, and the old release is kept.
    refused(cli("release", "build", "--run", finished), str(parquet), "half-copied or edited")
    assert parquet.is_file()


USAGE = {"stage": "judge", "model": "m", "mode": "online", "prompt_tokens": 10, "completion_tokens": 5}


def _pipeline(tmp_path: Path, run: Path) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "run": str(run), "steps": [{"pairs": {}}]}))
    return path


def test_a_foreign_usage_line_is_named_before_any_step_runs(finished: Path, tmp_path: Path) -> None:
    usage = finished / RunFiles.USAGE
    newer = {**USAGE, "cost_usd": 0.001, "reasoning_tokens": 3}  # a key from a newer version: fine
    usage.write_text(json.dumps(newer) + "\n" + json.dumps({"event": "login", "user": "x"}) + "\n")
    pairs_before = (finished / RunFiles.PAIRS).read_bytes()
    refused(cli("run", _pipeline(tmp_path, finished), "--force"), f"{usage}:2", "not a usage line")
    assert (finished / RunFiles.PAIRS).read_bytes() == pairs_before
    assert not (finished / "manifests" / "pipeline.json").exists()
    # The line removed (a torn last line is what a kill leaves: skipped): the spend is counted.
    usage.write_text(json.dumps(newer) + "\n" + '{"stage": "ju')
    result = cli("run", _pipeline(tmp_path, finished), "--force")
    assert result.exit_code == 0, result.output
    state = json.loads((finished / "manifests" / "pipeline.json").read_text())
    assert state["cost"]["stages"]["judge"]["prompt_tokens"] == 10


def test_a_step_that_fails_after_its_stage_finished_is_not_left_running(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cotforge.pipeline.runner as runner_module

    calls = []

    def cost_then_fail(run_dir: Path) -> dict:  # type: ignore[type-arg]
        calls.append(run_dir)
        if len(calls) > 1:
            raise OSError(5, "Input/output error", str(finished / RunFiles.USAGE))
        return {}

    monkeypatch.setattr(runner_module, "run_cost", cost_then_fail)
    result = cli("run", _pipeline(tmp_path, finished), "--force")
    assert result.exit_code == 1 and "Input/output error" in result.output, result.output
    step = json.loads((finished / "manifests" / "pipeline.json").read_text())["steps"]["pairs"]
    assert step["status"] == "failed" and step["error"].startswith("after the stage finished")
    assert json.loads((finished / "manifests" / "pairs.json").read_text())["status"] == "completed"

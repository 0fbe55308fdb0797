"""A stage without its inputs fails, naming the file and the stage that writes it, and touches no output."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.errors import StageInputError
from cotforge.pairs.build import PairsConfig, build_pairs_in_run
from cotforge.pairs.judging import JudgeConfig, judge_in_run
from cotforge.runfolder import RunFiles, read_jsonl
from cotforge.schemas import Candidate, RejectRecord
from tests.pipeline.conftest import PROMPTS, candidate

pytestmark = pytest.mark.unit
runner = CliRunner()


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize(
    ("damage", "file", "writer"),
    [
        ("delete", RunFiles.JUDGMENTS, "judge"),
        ("delete", RunFiles.CANDIDATES, "sample"),
        ("empty", RunFiles.CANDIDATES, "sample"),
        ("delete", RunFiles.PROMPTS, "ingest"),
        ("folder", RunFiles.JUDGMENTS, "judge"),
    ],
)
def test_pairs_without_an_input_fails_and_keeps_its_output(
    finished_run: Path, damage: str, file: str, writer: str
) -> None:
    before = _bytes(finished_run / RunFiles.PAIRS)
    target = finished_run / file
    target.unlink()
    if damage == "empty":
        target.write_text("")
    elif damage == "folder":
        target.mkdir()
    result = runner.invoke(app, ["pairs", "--run", str(finished_run)])
    assert result.exit_code == 1, result.output
    assert file in result.output and f"`{writer}`" in result.output
    assert "Traceback" not in result.output
    assert _bytes(finished_run / RunFiles.PAIRS) == before


def test_judge_source_requires_judgments(finished_run: Path) -> None:
    (finished_run / RunFiles.JUDGMENTS).unlink()
    with pytest.raises(StageInputError) as info:
        build_pairs_in_run(finished_run, PairsConfig(sources=["judge"]))
    assert info.value.file == str(finished_run / RunFiles.JUDGMENTS) and info.value.stage == "pairs"
    # A source that does not read judgments still runs.
    result = build_pairs_in_run(finished_run, PairsConfig(sources=["synthetic_corruption"]))
    assert result.pairs > 0


def test_validate_with_emptied_samples_keeps_accepted(finished_run: Path) -> None:
    before = _bytes(finished_run / RunFiles.ACCEPTED)
    (finished_run / RunFiles.SAMPLES).write_text("\n")
    result = runner.invoke(app, ["validate", "--run", str(finished_run)])
    assert result.exit_code == 1
    assert "samples.jsonl is empty" in result.output and "`generate`" in result.output
    assert _bytes(finished_run / RunFiles.ACCEPTED) == before


def test_a_typo_in_run_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "runs" / "typo"
    result = runner.invoke(app, ["pairs", "--run", str(typo)])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not typo.exists() and not typo.parent.exists()


def test_run_pointing_at_a_file_or_manifests_file(finished_run: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    result = runner.invoke(app, ["pairs", "--run", str(plain)])
    assert result.exit_code == 1 and "is a file, not a run folder" in result.output
    shutil.rmtree(finished_run / RunFiles.MANIFESTS)
    (finished_run / RunFiles.MANIFESTS).write_text("not a folder")
    result = runner.invoke(app, ["pairs", "--run", str(finished_run)])
    assert result.exit_code == 1 and "manifests is a file" in result.output


def test_read_only_run_folder_is_one_clear_line(finished_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, whom file modes do not stop: deny write access the way the OS would report it.
    real_access = os.access
    before = _bytes(finished_run / RunFiles.PAIRS)
    with monkeypatch.context() as patch:
        patch.setattr(os, "access", lambda p, mode: Path(p) != finished_run and real_access(p, mode))
        with pytest.raises(StageInputError, match="is read-only"):
            build_pairs_in_run(finished_run, PairsConfig())
    assert _bytes(finished_run / RunFiles.PAIRS) == before


def test_candidates_with_unknown_prompt_become_rejects(finished_run: Path) -> None:
    path = finished_run / RunFiles.CANDIDATES
    candidates = list(read_jsonl(path, Candidate))
    stray = candidate(PROMPTS[0], 7, "Some reasoning.", "Some answer.").model_copy(
        update={"id": "stray/c7", "prompt_id": "no-such-prompt"}
    )
    path.write_text("".join(c.model_dump_json() + "\n" for c in [*candidates, stray]))
    judge_in_run(finished_run, JudgeConfig(judge=None))
    judge_in_run(finished_run, JudgeConfig(judge=None))  # a re-run does not repeat the reject
    rejects = [r for r in read_jsonl(finished_run / RunFiles.JUDGE_REJECTS, RejectRecord)]
    assert [(r.record_id, r.reasons, r.line) for r in rejects] == [("stray/c7", ["unknown_prompt"], 9)]
    build_pairs_in_run(finished_run, PairsConfig())
    pair_rejects = list(read_jsonl(finished_run / RunFiles.PAIRS_REJECTS, RejectRecord))
    assert [(r.record_id, r.reasons) for r in pair_rejects] == [("stray/c7", ["unknown_prompt"])]

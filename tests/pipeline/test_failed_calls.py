"""A failed model call is never final: the stage exits "completed with N failures" and a re-run asks again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.errors import EXIT_FAILED_RECORDS, FailedRecordsError
from cotforge.llm.config import LLMConfig
from cotforge.pairs.judging import JudgeConfig, judge_in_run
from cotforge.runfolder import RunFiles, RunFolder, read_jsonl
from cotforge.runfolder.integrity import accept_file
from cotforge.schemas import JudgeScores, RejectRecord
from cotforge.serving.vllm_server import VLLMServer

REFUSED = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


def _leave_one_unjudged(run: Path, judge_id: str = "llm:m") -> str:
    """The run as judge ``judge_id`` left it: every candidate scored but one (a judge's scores are its own)."""
    path = run / RunFiles.JUDGMENTS
    scores = [s.model_copy(update={"judge_id": judge_id}) for s in read_jsonl(path, JudgeScores)]
    path.write_text("".join(s.model_dump_json() + "\n" for s in scores[:-1]))
    # A hand edit of a judged run: recorded as intended (`--accept-changed`), else judge refuses the file.
    accept_file(RunFolder(run), RunFiles.JUDGMENTS, by="test")
    return scores[-1].candidate_id


def _judge(base_url: str, model: str = "m", **extra: object) -> JudgeConfig:
    llm = LLMConfig(model=model, base_urls=[base_url], max_retries=0, concurrency=4)
    return JudgeConfig(judge=llm, crosscheck=False, progress=False, **extra)  # type: ignore[arg-type]


def _failed_rejects(run: Path) -> list[str]:
    rejects = read_jsonl(run / RunFiles.JUDGE_REJECTS, RejectRecord)
    return sorted({r.record_id or "" for r in rejects if "request_failed" in r.reasons})


@pytest.mark.unit
def test_unreachable_judge_exits_with_failures_and_keeps_the_record(finished_run: Path) -> None:
    left = _leave_one_unjudged(finished_run)
    with pytest.raises(FailedRecordsError) as info:
        judge_in_run(finished_run, _judge(REFUSED))
    assert info.value.failed == 1 and "completed with 1 failures" in str(info.value)
    assert _failed_rejects(finished_run) == [left]
    manifest = json.loads((finished_run / "manifests" / "judge.json").read_text())
    assert manifest["status"] == "failed" and "1 failures" in manifest["error"]
    # The CLI: a distinct exit status; a re-run asks again (still failing here), never "failed 0".
    result = CliRunner().invoke(
        app, ["judge", "--run", str(finished_run), "--base-url", REFUSED, "--model", "m", "--no-crosscheck"]
    )
    assert result.exit_code == EXIT_FAILED_RECORDS, result.output
    assert "completed with 1 failures" in result.output
    assert _failed_rejects(finished_run) == [left]
    # Unless the user accepts the gap.
    judge_in_run(finished_run, _judge(REFUSED, allow_failures=True))
    manifest = json.loads((finished_run / "manifests" / "judge.json").read_text())
    assert manifest["status"] == "completed" and manifest["counts"]["failed"] == 1


@pytest.mark.integration
def test_rerun_against_a_live_judge_fills_the_hole(finished_run: Path, tiny_vllm_server: VLLMServer) -> None:
    left = _leave_one_unjudged(finished_run, "llm:tiny")
    with pytest.raises(FailedRecordsError):
        judge_in_run(finished_run, _judge(REFUSED, model="tiny"))
    result = judge_in_run(finished_run, _judge(tiny_vllm_server.base_url, model="tiny"))
    assert result.failed == 0
    manifest = json.loads((finished_run / "manifests" / "judge.json").read_text())
    assert manifest["usage"]["requests"] == 3  # only the hole was asked about
    judged = {s.candidate_id for s in read_jsonl(finished_run / RunFiles.JUDGMENTS, JudgeScores)}
    assert left in judged and _failed_rejects(finished_run) == []


@pytest.mark.unit
def test_pipeline_does_not_call_a_step_with_failures_completed(finished_run: Path, tmp_path: Path) -> None:
    _leave_one_unjudged(finished_run)
    judge = {"judge": {"model": "m", "base_urls": [REFUSED], "max_retries": 0}, "crosscheck": False}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "run": str(finished_run), "steps": [{"judge": judge}]}))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == EXIT_FAILED_RECORDS and "completed with 1 failures" in result.output
    state = json.loads((finished_run / "manifests" / "pipeline.json").read_text())
    assert state["steps"]["judge"]["status"] == "failed"

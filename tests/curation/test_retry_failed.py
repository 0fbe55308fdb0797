"""`--retry-failed STEP`: only the records a step rejected for a retryable reason are asked again, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.runfolder import RunFiles, atomic_write_jsonl, read_jsonl
from cotforge.runfolder.failures import next_attempt, take_retryable_rejects
from cotforge.schemas import Candidate, JudgeScores, RejectRecord
from cotforge.serving.vllm_server import VLLMServer
from tests.llm.fault_proxy import FaultProxy
from tests.pipeline.conftest import build_finished_run


def _pipeline(tmp_path: Path, run: Path, base_url: str) -> Path:
    llm = {"model": "tiny", "base_urls": [base_url], "max_retries": 0, "parse_retries": 0, "concurrency": 4}
    judge = {"judge": llm, "crosscheck": False, "allow_failures": True, "progress": False}
    steps = [{"judge": judge}, {"pairs": {}}]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "retry", "run": str(run), "steps": steps}))
    return path


def _reject(record_id: str, reason: str, stage: str = "judge", **raw: Any) -> RejectRecord:
    return RejectRecord(stage=stage, source="x", record_id=record_id, reasons=[reason], message="m", raw=raw)


@pytest.mark.unit
def test_take_retryable_rejects_takes_only_transport_and_parse_failures(tmp_path: Path) -> None:
    path = tmp_path / "judge.rejects.jsonl"
    kept = [
        _reject("a", "request_rejected"),
        _reject("b", "unknown_prompt"),
        _reject("c", "parse_failed", "sample"),
    ]
    taken = [_reject("d", "request_failed"), _reject("e", "parse_failed", outputs=["x", "y"])]
    atomic_write_jsonl(path, [kept[0], taken[0], kept[1], taken[1], kept[2]])
    assert take_retryable_rejects(path, "judge") == taken
    assert list(read_jsonl(path, RejectRecord)) == kept
    assert [next_attempt(r) for r in taken] == [0, 2]
    assert next_attempt(_reject("f", "parse_failed", "generate", next_attempt=3, outputs=["x"])) == 3
    assert take_retryable_rejects(path, "judge") == []


@pytest.mark.unit
def test_retry_failed_names_a_step_that_calls_a_model(tmp_path: Path) -> None:
    run = tmp_path / "R"
    build_finished_run(run)
    pipeline = _pipeline(tmp_path, run, "http://127.0.0.1:9/v1")
    for name, message in (("pairs", "makes no model calls"), ("train", "no such step")):
        result = CliRunner().invoke(app, ["run", str(pipeline), "--check", "--retry-failed", name])
        assert result.exit_code != 0 and message in result.output, result.output
    assert (
        CliRunner().invoke(app, ["run", str(pipeline), "--check", "--retry-failed", "judge"]).exit_code == 0
    )


@pytest.mark.integration
def test_run_retry_failed_judge_asks_only_the_failed_segments(
    tmp_path: Path, tiny_vllm_server: VLLMServer
) -> None:
    run = tmp_path / "R"
    build_finished_run(run)
    (run / RunFiles.JUDGMENTS).unlink()  # the rule judge's scores: the LLM judge starts afresh
    candidates = [c.id for c in read_jsonl(run / RunFiles.CANDIDATES, Candidate) if c.spans is not None]
    faults = {1: "500", 2: "unparseable"}  # the first two requests of the first run only
    with FaultProxy(tiny_vllm_server.base_url, schedule=lambda n, _body: faults.get(n)) as proxy:
        pipeline = _pipeline(tmp_path, run, proxy.base_url)
        first = CliRunner().invoke(app, ["run", str(pipeline)])
        assert first.exit_code == 0, first.output  # allow_failures: the step completes with the gaps
        rejects = list(read_jsonl(run / RunFiles.JUDGE_REJECTS, RejectRecord))
        assert sorted(r.reasons[0] for r in rejects) == ["parse_failed", "request_failed"]
        failed = {r.record_id for r in rejects}
        judged = [s.candidate_id for s in read_jsonl(run / RunFiles.JUDGMENTS, JudgeScores)]
        assert sorted(judged) == sorted(set(candidates) - failed)
        sent_first = len(proxy.bodies)

        # A plain re-run finds the step unchanged and leaves the gaps.
        again = CliRunner().invoke(app, ["run", str(pipeline)])
        assert again.exit_code == 0 and "[judge] unchanged" in again.output, again.output
        assert len(proxy.bodies) == sent_first

        retried = CliRunner().invoke(app, ["run", str(pipeline), "--retry-failed", "judge"])
        assert retried.exit_code == 0, retried.output
        assert "[judge] retrying failed records" in retried.output and "[pairs] running" in retried.output
        # Only the two failed segments were sent; the parse failure with a seed it had not tried (the cached
        # unparseable answer is not served again); the candidates' other segments came from the cache.
        sent = proxy.bodies[sent_first:]
        assert len(sent) == 2
        assert sorted(b.get("seed", 0) != 0 for b in sent) == [False, True]
    judged = [s.candidate_id for s in read_jsonl(run / RunFiles.JUDGMENTS, JudgeScores)]
    assert sorted(judged) == sorted(candidates)  # each exactly once
    assert list(read_jsonl(run / RunFiles.JUDGE_REJECTS, RejectRecord)) == []
    state = json.loads((run / "manifests" / "pipeline.json").read_text())
    assert {s["status"] for s in state["steps"].values()} == {"completed"}

"""`cotforge eval` against the real tiny-model vLLM server: outputs, judge scores, per-tactic metrics, plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.evaluation.run import EvalConfig, eval_in_run
from cotforge.llm.config import LLMConfig
from cotforge.serving import VLLMServer

pytestmark = pytest.mark.integration


def _model(server: VLLMServer) -> LLMConfig:
    return LLMConfig.model_validate(
        {"model": "tiny", "base_urls": [server.base_url], "sampling": {"temperature": 0.0, "max_tokens": 24}}
    )


def test_eval_with_llm_judge_writes_per_tactic_metrics(run_dir: Path, tiny_vllm_server: VLLMServer) -> None:
    model = _model(tiny_vllm_server)
    config = EvalConfig(models={"tiny": model}, judge=model, limit=2, tactics=["roleplay", "base64"])
    results = eval_in_run(run_dir, config)
    cells = results["tiny"]["per_tactic"]
    assert set(cells) == {"harmful/direct", "jailbreak/roleplay", "jailbreak/base64", "benign/direct"}
    assert all(c["n"] == 2 for c in cells.values())
    assert 0.0 <= results["tiny"]["attack_success_rate"] <= 1.0
    rows = [json.loads(line) for line in (run_dir / "eval" / "outputs.jsonl").read_text().split("\n") if line]
    assert len(rows) == 8 and {r["set"] for r in rows} == {"harmful", "jailbreak", "benign"}
    # The judge's 0..10 scale: every h_f is a multiple of 0.1.
    assert all(abs(r["h_f"] * 10 - round(r["h_f"] * 10)) < 1e-9 for r in rows)
    attack = [r for r in rows if r["set"] != "benign"]
    asr = sum(r["h_f"] >= 0.5 for r in attack) / len(attack)
    assert results["tiny"]["attack_success_rate"] == asr
    png = run_dir / "eval" / "asr_by_tactic.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run_dir / "eval" / "results.json").read_text()) == results


def test_eval_cli_compares_two_labels_with_the_rule_judge(
    run_dir: Path, tiny_vllm_server: VLLMServer
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "eval", "--run", str(run_dir), "--model", "a=tiny", "--model", "b=tiny",
            "--base-url", tiny_vllm_server.base_url, "--limit", "2", "--tactic", "empty_think",
            "--max-tokens", "16",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "jailbreak/empty_think" in result.output and "over-refusal" in result.output
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert set(results) == {"a", "b"}
    # Same model, same greedy sampling, same rule judge: the two labels must agree exactly.
    assert results["a"]["per_tactic"] == results["b"]["per_tactic"]

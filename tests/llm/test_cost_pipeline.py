"""`manifests/pipeline.json` carries the run's spend: per stage, in total, per kept sample, across resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from cotforge.llm.config import LLMConfig, PriceTable
from cotforge.llm.pricing import LEDGER_FILE, UsageLedger
from cotforge.pipeline.runner import PipelineRunner
from cotforge.pipeline.spec import PipelineSpec
from cotforge.runfolder import RunFiles
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.schemas import TokenUsage

pytestmark = pytest.mark.unit

PRICED = LLMConfig(
    model="teacher",
    base_urls=["http://127.0.0.1:1/v1"],
    price=PriceTable(prompt_per_million=1, completion_per_million=2),
)
UNPRICED = LLMConfig(model="judge-without-price", base_urls=["http://judge.example.invalid/v1"])


class NoServers:
    def url(self, name: str, spec: Any) -> tuple[str, str]:
        raise AssertionError("no servers in this pipeline")

    def release(self, name: str) -> None: ...

    def close(self) -> None: ...


class SpendConfig(BaseModel):
    """A stand-in stage: it pays for ``calls`` responses and may keep a file of two records."""

    model_config = ConfigDict(extra="forbid")

    label: str
    llm: LLMConfig
    calls: int
    kept_file: str | None = None


def spend(run_dir: Path, config: SpendConfig) -> dict[str, Any]:
    # What the request engine does for each response a server sends.
    ledger = UsageLedger(Path(run_dir) / LEDGER_FILE, config.label, config.llm)
    for _ in range(config.calls):
        ledger.record(TokenUsage(prompt_tokens=1000, completion_tokens=500))
    ledger.close()
    if config.kept_file:
        (Path(run_dir) / config.kept_file).write_text('{"id": "a"}\n{"id": "b"}\n')
    return {"calls": config.calls}


def _declaration(name: str) -> StageDeclaration:
    here = "tests.llm.test_cost_pipeline"
    return StageDeclaration(name=name, config=f"{here}:SpendConfig", edge=f"{here}:spend", creates_run=True)


def _runner(run: Path, judge_config: LLMConfig) -> PipelineRunner:
    steps = [
        {"stage": "generate", "config": {"label": "generate", "llm": PRICED.model_dump(), "calls": 3,
                                         "kept_file": RunFiles.ACCEPTED}},
        {"stage": "judge", "config": {"label": "judge", "llm": judge_config.model_dump(), "calls": 2}},
    ]  # fmt: skip
    spec = PipelineSpec(name="cost", run=str(run), steps=steps)
    registry = {name: _declaration(name) for name in ("generate", "judge")}
    return PipelineRunner(
        spec=spec, registry=registry, servers=NoServers(), templates_root=run, log=lambda _: None
    )


def test_pipeline_json_sums_cost_per_stage_and_per_kept_sample(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _runner(run, PRICED).run()
    state = json.loads((run / "manifests" / "pipeline.json").read_text())
    cost = state["cost"]
    per_call = 1000 * 1 / 1e6 + 500 * 2 / 1e6
    assert cost["stages"]["generate"]["cost_usd"] == pytest.approx(3 * per_call)
    assert cost["stages"]["judge"]["requests"] == 2
    assert cost["total_usd"] == pytest.approx(5 * per_call)
    assert cost["kept_samples"] == 2 and cost["per_kept_sample_usd"] == pytest.approx(5 * per_call / 2)

    # A second run (e.g. a resume) adds what it paid for; the ledger keeps both.
    _runner(run, PRICED).run(force=True)
    cost = json.loads((run / "manifests" / "pipeline.json").read_text())["cost"]
    assert cost["total_usd"] == pytest.approx(10 * per_call)


def test_an_unpriced_stage_makes_the_total_unknown_not_zero(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _runner(run, UNPRICED).run()
    cost = json.loads((run / "manifests" / "pipeline.json").read_text())["cost"]
    assert cost["stages"]["judge"]["cost_usd"] is None and cost["stages"]["generate"]["cost_usd"] is not None
    assert cost["total_usd"] is None and cost["per_kept_sample_usd"] is None
    assert cost["unpriced_models"] == ["judge-without-price"]


@pytest.mark.integration
def test_a_priced_run_on_the_tiny_server_costs_per_kept_item_the_sum_over_stages(
    tmp_path: Path, tiny_vllm_server: Any
) -> None:
    """Real stages (generate, validate with re-asks, sample, pairs) on a priced model: the pipeline's cost per
    kept sample and per kept pair is the sum of what every stage's manifest says it paid, over what was kept.
    (The tiny random model cannot sample inside the think-format grammar, so its candidates are not judged here;
    the judge's spend is tested in tests/pairs/test_judge_ensemble_stages.py.)"""
    from cotforge.pipeline.stages import registry
    from cotforge.templates import templates_root

    run = tmp_path / "run"
    priced = {
        "model": "tiny",
        "base_urls": [tiny_vllm_server.base_url],
        "price": {"prompt_per_million": 2.0, "completion_per_million": 8.0},
        "concurrency": 8,
    }
    steps = [
        {"stage": "ingest", "config": {"bundled": True, "limit_per_source": 2}},
        {"stage": "generate", "config": {
            "teacher": {**priced, "sampling": {"max_tokens": 160}}, "output_mode": "structured",
            "bounds": {"min_steps": 2, "max_steps": 3, "max_step_chars": 40, "max_answer_chars": 80},
            "progress": False}},
        # Three steps asked where the random teacher gives two or three: the re-asks are paid for too.
        {"stage": "validate", "config": {"refusal_consistency": False, "quality": {"enabled": False},
                                         "min_steps": 3, "reask": 1, "progress": False}},
        {"stage": "sample", "config": {
            "policy": {**priced, "sampling": {"temperature": 1.0, "max_tokens": 48}}, "k": 2, "limit": 2,
            "progress": False}},
        {"stage": "pairs", "config": {"sources": ["synthetic_corruption"]}},
    ]  # fmt: skip
    spec = PipelineSpec(name="priced", run=str(run), steps=steps)
    PipelineRunner(spec, registry(), NoServers(), templates_root(), log=lambda _: None).run()
    cost = json.loads((run / "manifests" / "pipeline.json").read_text())["cost"]
    paid = {}
    for stage in ("generate", "validate", "sample"):
        manifest = json.loads((run / "manifests" / f"{stage}.json").read_text())
        paid[stage] = manifest["usage"]["cost_usd"]
        assert paid[stage] > 0 and cost["stages"][stage]["cost_usd"] == pytest.approx(paid[stage], rel=1e-3)
    total = sum(paid.values())
    kept_samples = (run / RunFiles.ACCEPTED).read_text().count("\n")
    kept_pairs = (run / RunFiles.PAIRS).read_text().count("\n")
    assert kept_samples > 0 and kept_pairs > 0
    assert cost["total_usd"] == pytest.approx(total, rel=1e-3) and cost["unpriced_models"] == []
    assert cost["per_kept_sample_usd"] > 0 and cost["per_kept_pair_usd"] > 0
    assert cost["per_kept_sample_usd"] == pytest.approx(total / kept_samples, rel=1e-3)
    assert cost["per_kept_pair_usd"] == pytest.approx(total / kept_pairs, rel=1e-3)

"""Report fixtures: the realistic run folder of tests/release/run_factory.py, plus an eval summary."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _run_factory() -> ModuleType:
    # One run-folder builder for the release and report tests; loaded by path (tests/ has no packages).
    path = Path(__file__).resolve().parents[1] / "release" / "run_factory.py"
    spec = importlib.util.spec_from_file_location("run_factory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("run_factory", module)
    spec.loader.exec_module(module)
    return module


run_factory = _run_factory()

# What `cotforge eval` writes into eval/results.json (cotforge/evaluation/run.py): label → figures.
EVAL_RESULTS: dict[str, Any] = {
    label: {
        "model": model,
        "attack_success_rate": asr,
        "over_refusal_rate": orr,
        "unsplit_rate": 0.1,
        "per_tactic": {
            "harmful/direct": {"n": 10, "attack_success_rate": asr, "unsplit": 1},
            "jailbreak/roleplay": {"n": 10, "attack_success_rate": min(1.0, asr + 0.2), "unsplit": 0},
            "jailbreak/base64": {"n": 10, "attack_success_rate": asr / 2, "unsplit": 2},
            "benign/direct": {"n": 8, "over_refusal_rate": orr, "unsplit": 0},
        },
    }
    for label, model, asr, orr in [("base", "smollm2", 0.6, 0.1), ("awdpo", "models/awdpo", 0.2, 0.25)]
}


@pytest.fixture
def report_run(tmp_path: Path) -> Path:
    """A finished run with trainer logs and an eval summary."""
    built = run_factory.build_run(tmp_path / "run")
    (built.root / "eval").mkdir()
    (built.root / "eval" / "results.json").write_text(json.dumps(EVAL_RESULTS, indent=2), encoding="utf-8")
    # What the request engine's usage ledger holds after a generate and a judge run (cotforge/llm/pricing.py).
    ledger = [
        {"stage": "generate", "model": "gpt-4o-mini", "mode": "online", "prompt_tokens": 900,
         "completion_tokens": 300, "cost_usd": 0.000315},
        {"stage": "judge", "model": "smollm2", "mode": "online", "prompt_tokens": 400, "completion_tokens": 20,
         "cost_usd": None},
    ]  # fmt: skip
    (built.root / "usage.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger), encoding="utf-8")
    return built.root

"""The report's funnel section, and its pipeline table not showing the report step as running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_factory import build_run

from cotforge.report.build import build_report

pytestmark = pytest.mark.unit


def test_report_shows_the_funnel_by_reason_and_its_own_step_completed(tmp_path: Path) -> None:
    built = build_run(tmp_path / "run", with_metrics=False)
    state_path = built.root / "manifests" / "pipeline.json"
    state = json.loads(state_path.read_text())
    state["steps"]["report"] = {**state["steps"]["pairs"], "status": "running"}  # as the runner leaves it
    state_path.write_text(json.dumps(state))
    result = build_report(built.root)
    assert result.sections["funnel"] == "ok"
    page = Path(result.html).read_text()
    assert "Funnel: where prompts stopped" in page
    for reason in ("no_think_close", "utility_refusal", "empty_text"):
        assert reason in page
    assert "running" not in page

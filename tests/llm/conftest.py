"""Fixtures for generation tests: a run folder with a few bundled prompts, and a generation config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cotforge.ingest.rows import IngestConfig
from cotforge.ingest.run import ingest_into_run


@pytest.fixture()
def prompts_run(run_dir: Path) -> Path:
    """A run folder holding 3 prompts from each bundled file (safety and utility)."""
    ingest_into_run(run_dir, IngestConfig(bundled=True, limit_per_source=3))
    return run_dir


def small_generation(model: str, url: str, **teacher: Any) -> dict[str, Any]:
    """A structured-mode generation config small enough for a random tiny model on CPU."""
    return {
        "teacher": {"model": model, "base_urls": [url], "sampling": {"max_tokens": 200}, **teacher},
        "output_mode": "structured",
        "bounds": {"min_steps": 2, "max_steps": 3, "max_step_chars": 40, "max_answer_chars": 80},
        "progress": False,
    }

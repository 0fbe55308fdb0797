"""Fixtures for the generation tests that go beyond tests/llm: replicas, accounting, --retry-rejects,
--refresh/--no-cache and the CLI's own error handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cotforge.ingest.rows import IngestConfig
from cotforge.ingest.run import ingest_into_run


@pytest.fixture()
def few_prompts_run(run_dir: Path) -> Path:
    """A run folder holding 2 prompts from each bundled file (safety and utility)."""
    ingest_into_run(run_dir, IngestConfig(bundled=True, limit_per_source=2))
    return run_dir


def tiny_generation(urls: list[str], **overrides: Any) -> dict[str, Any]:
    """A structured-mode generation config small enough for the random tiny model on CPU."""
    teacher: dict[str, Any] = {"model": "tiny", "base_urls": urls, "sampling": {"max_tokens": 160}}
    teacher.update(overrides.pop("teacher", {}))
    return {
        "teacher": teacher,
        "output_mode": "structured",
        "bounds": {"min_steps": 2, "max_steps": 3, "max_step_chars": 40, "max_answer_chars": 80},
        "progress": False,
        **overrides,
    }

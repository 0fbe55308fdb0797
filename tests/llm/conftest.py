"""Fixtures for the LLM tests: a run folder with a few bundled prompts, a generation config, a local Ray cluster
and the fixed-latency endpoints."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
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


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A real local Ray cluster of 2 CPUs started by this test process (~5 s, once per session); yields its GCS
    address (for a CLI run in another process) and shuts it down, with the processes it started, at the end."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def fleet_endpoints() -> ModuleType:
    """``benchmarks/fleet_endpoints.py``: fixed-latency OpenAI-compatible endpoints (``Fleet``)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "fleet_endpoints.py"
    spec = importlib.util.spec_from_file_location("fleet_endpoints", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fleet_endpoints"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

"""Release fixtures: a realistic finished run folder (see run_factory.py) and its release."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_factory import BuiltRun, build_run

from cotforge.release.build import build_release
from cotforge.release.manifest import ReleaseResult


@pytest.fixture
def built_run(tmp_path: Path) -> BuiltRun:
    return build_run(tmp_path / "run")


@pytest.fixture
def released(built_run: BuiltRun) -> tuple[BuiltRun, ReleaseResult]:
    return built_run, build_release(built_run.root)

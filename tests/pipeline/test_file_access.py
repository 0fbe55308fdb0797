"""The file watch behind the quickstart's "every stage touches only its declared run files" check: it sees
what stages really read and write, and it reports a file a declaration leaves out (positive and negative
control on stages that need no server; the quickstart test applies it to all thirteen)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cotforge.generation.validate import VALIDATE, ValidationConfig, validate_in_run
from cotforge.pairs.build import PAIRS, PairsConfig, build_pairs_in_run
from cotforge.pairs.judging import JUDGE, JudgeConfig, judge_in_run
from cotforge.release.build import RELEASE, build_release
from cotforge.release.config import ReleaseConfig
from cotforge.report.build import REPORT, ReportConfig, build_report
from cotforge.review.stage import REVIEW, ReviewConfig, auto_review_in_run
from cotforge.runfolder import RunFiles
from tests.pipeline.conftest import build_finished_run
from tests.pipeline.file_watch import FileWatch, allowed_names, install, run_file_name, undeclared

pytestmark = pytest.mark.unit

_WATCHES: list[FileWatch] = []


def _watch(root: Path) -> FileWatch:
    # One hook per test process (audit hooks stay): re-aimed at each test's run folder.
    if not _WATCHES:
        _WATCHES.append(FileWatch(root))
        install(_WATCHES[0])
    watch = _WATCHES[0]
    watch.root, watch.seen = root.resolve(), set()
    return watch


def test_names_map_back_to_the_run_file_they_stand_for() -> None:
    assert run_file_name(".pairs.jsonl.k2j3h4.tmp") == "pairs.jsonl"
    assert run_file_name("eval/.results.json.abc123.tmp") == "eval/results.json"
    assert run_file_name(".release.x8y7.tmp/sft/train.parquet") == "release"
    assert run_file_name(".release.old-4242/README.md") == "release"
    assert run_file_name("cache.sqlite-wal") == "cache.sqlite"
    assert undeclared(["models/sft/config.json", "manifests/pairs.json"], {"models/sft", "manifests"}) == []
    assert undeclared(["augmented.jsonl"], {"prompts.jsonl", "manifests"}) == ["augmented.jsonl"]


def test_stages_touch_what_they_declare_and_a_missing_declaration_is_caught(tmp_path: Path) -> None:
    root = tmp_path / "run"
    build_finished_run(root)  # validate, review, judge (rules) and pairs have run once
    watch = _watch(root)
    calls = [
        (VALIDATE, ValidationConfig(min_steps=2), validate_in_run),
        (REVIEW, ReviewConfig(mode="auto"), auto_review_in_run),
        (JUDGE, JudgeConfig(judge=None), judge_in_run),
        (PAIRS, PairsConfig(), build_pairs_in_run),
        (RELEASE, ReleaseConfig(), build_release),
        (REPORT, ReportConfig(), build_report),
    ]
    touched: dict[str, set[str]] = {}
    for declaration, config, edge in calls:
        watch.stage = declaration.name
        try:
            edge(root, config)
        finally:
            watch.stage = None
        touched[declaration.name] = {p for s, p in watch.seen if s == declaration.name}
    for declaration, config, _ in calls:
        assert touched[declaration.name], f"{declaration.name}: no file access seen"
        assert undeclared(touched[declaration.name], allowed_names(declaration, config)) == [], (
            declaration.name
        )
    # The watch sees real reads: pairs reads the judgments, the release writes its folder.
    assert RunFiles.JUDGMENTS in {run_file_name(p) for p in touched["pairs"]}
    assert "release" in {run_file_name(p) for p in touched["release"]}
    # Negative control: pairs declared without the judgments it reads is reported.
    blind = dataclasses.replace(PAIRS, optional_inputs=(), conditional_inputs=None)
    assert RunFiles.JUDGMENTS in undeclared(touched["pairs"], allowed_names(blind, PairsConfig()))

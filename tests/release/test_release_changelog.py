"""Versioned releases: two successive builds produce a correct changelog; subset filters reach the card."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from run_factory import BuiltRun

from cotforge.release.build import build_release
from cotforge.release.config import ReleaseConfig, ReleaseFilters
from cotforge.release.manifest import ReleaseError
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import PreferencePair, Sample

pytestmark = pytest.mark.unit


def _changelog(out: str) -> dict:
    return json.loads((Path(out) / "changelog.json").read_text())


def test_two_successive_releases_produce_a_correct_changelog(built_run: BuiltRun) -> None:
    first = build_release(built_run.root)
    log1 = _changelog(first.out_dir)
    assert log1["version"] == 1 and log1["previous_version"] is None
    assert log1["configs"]["preference"]["total"]["added"] == first.rows["preference"]

    # Between releases: one pair dropped, one sft sample's answer edited, the pairs gamma changed.
    folder = RunFolder(built_run.root)
    pairs = folder.read(RunFiles.PAIRS, PreferencePair)
    dropped = pairs[0]
    folder.write(RunFiles.PAIRS, pairs[1:])
    reviewed = folder.read(RunFiles.REVIEWED, Sample)
    edited = reviewed[0]
    new_rationale = edited.rationale.model_copy(update={"answer": "A better, edited answer."})
    folder.write(RunFiles.REVIEWED, [edited.model_copy(update={"rationale": new_rationale}), *reviewed[1:]])
    manifest_path = built_run.root / "manifests" / "pairs.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["gamma"] = 0.3
    manifest_path.write_text(json.dumps(manifest))

    second = build_release(built_run.root)
    log2 = _changelog(second.out_dir)
    assert log2["version"] == 2 and log2["previous_version"] == 1
    pref = log2["configs"]["preference"]["total"]
    assert (pref["added"], pref["removed"], pref["changed"]) == (0, 1, 0)
    sft = log2["configs"]["sft"]["total"]
    assert (sft["added"], sft["removed"], sft["changed"]) == (0, 0, 1)
    category = next(p.category.value for p in built_run.prompts if p.id == dropped.prompt_id)
    assert log2["configs"]["preference"]["by_category"][category]["removed"] == 1
    assert log2["config_diff"] == {"pairs": {"gamma": [0.5, 0.3]}}
    card = (Path(second.out_dir) / "README.md").read_text()
    assert "## Changes" in card and "against release 1" in card and "`pairs.gamma`: `0.5` → `0.3`" in card
    assert (Path(second.out_dir) / "CHANGELOG.md").is_file()
    assert json.loads((Path(second.out_dir) / "release.json").read_text())["version"] == 2


def test_subset_filters_are_applied_and_recorded(built_run: BuiltRun) -> None:
    filters = ReleaseFilters(category=["non_violent_crimes"], pair_source=["judge"])
    result = build_release(built_run.root, ReleaseConfig(out="subset", filters=filters))
    out = Path(result.out_dir)
    manifest = json.loads((out / "release.json").read_text())
    pref = pq.read_table(out / manifest["configs"]["preference"]["file"]).to_pylist()
    assert (
        pref
        and {r["category"] for r in pref} == {"non_violent_crimes"}
        and {r["source"] for r in pref} == {"judge"}
    )
    sft = pq.read_table(out / manifest["configs"]["sft"]["file"]).to_pylist()
    assert sft and {r["category"] for r in sft} == {"non_violent_crimes"}
    assert manifest["filters"] == {"category": ["non_violent_crimes"], "pair_source": ["judge"]}
    card = (out / "README.md").read_text()
    assert "## Subset" in card and "`category`: `non_violent_crimes`" in card


def test_filters_that_keep_nothing_are_an_error(built_run: BuiltRun) -> None:
    with pytest.raises(ReleaseError, match="after the filters"):
        build_release(
            built_run.root,
            ReleaseConfig(out="none", configs=["sft", "preference"], filters=ReleaseFilters(source=["x"])),
        )
    assert not (built_run.root / "none").exists()

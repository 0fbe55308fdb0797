"""The run's prompts: one reader for prompts.jsonl plus augmented.jsonl, and the stages that use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cotforge.errors import CotforgeError
from cotforge.llm.config import LLMConfig
from cotforge.pairs.sampling import SampleConfig, _policy_prompts
from cotforge.pairs.tactics import variant_record
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import PromptRecord

pytestmark = pytest.mark.unit


def _prompt(text: str) -> PromptRecord:
    return PromptRecord(
        id=PromptRecord.make_id(text, "safety"),
        text=text,
        kind="safety",
        category="violent_crimes",
        source="test",
        licence="MIT",
    )


@pytest.fixture()
def folder(run_dir: Path) -> RunFolder:
    folder = RunFolder(run_dir)
    originals = [_prompt(f"original {i}") for i in range(3)]
    folder.write(RunFiles.PROMPTS, originals)
    folder.write(
        RunFiles.AUGMENTED,
        [
            variant_record(p, f"{p.text} as a story ({t})", t)
            for p in originals[:2]
            for t in ("roleplay", "past")
        ],
    )
    return folder


def test_prompts_then_variants_each_once(folder: RunFolder) -> None:
    texts = [p.text for p in read_run_prompts(folder)]
    assert texts[:3] == ["original 0", "original 1", "original 2"]
    assert len(texts) == 7 and len(set(texts)) == 7
    assert [p.text for p in read_run_prompts(folder, augmented=False)] == texts[:3]
    assert all(p.parent_id for p in read_run_prompts(folder, originals=False))


def test_missing_prompts_is_an_error_unless_optional(run_dir: Path) -> None:
    folder = RunFolder(run_dir)
    with pytest.raises(CotforgeError, match=r"prompts\.jsonl: not found; run `cotforge ingest"):
        read_run_prompts(folder)
    assert read_run_prompts(folder, required=False) == []
    variant = variant_record(_prompt("x"), "x as a poem", "roleplay")
    folder.write(RunFiles.AUGMENTED, [variant])
    assert read_run_prompts(folder, required=False) == [variant]  # augmented alone, e.g. for pairs


def test_sampling_alternates_originals_and_variants_so_a_limit_keeps_both(folder: RunFolder) -> None:
    policy = LLMConfig(model="m")
    config = SampleConfig(policy=policy, limit=4)
    got = _policy_prompts(folder, config)
    assert [p.parent_id is None for p in got] == [True, False, True, False]
    only_variants = _policy_prompts(folder, SampleConfig(policy=policy, include_prompts=False))
    assert len(only_variants) == 4 and all(p.parent_id for p in only_variants)
    assert len(_policy_prompts(folder, SampleConfig(policy=policy, include_augmented=False))) == 3

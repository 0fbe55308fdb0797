"""The reference log-prob disk cache: the second AW-DPO run on the same pairs pays no reference pass, and any
change to what the sums depend on is a miss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cotforge.runfolder import RunFolder
from cotforge.runfolder.manifest import load_manifest
from cotforge.train import AWDPOTrainConfig, LoRASettings, train_awdpo
from cotforge.train.ref_cache import REF_CACHE_DIR_ENV, RefLogpCache, reference_identity, row_key

ROW = {
    "prompt_ids": [1, 2, 3],
    "chosen_ids": [4, 5, 6],
    "rejected_ids": [4, 7, 6],
    "chosen_segment_ids": [1, 1, 2],
    "rejected_segment_ids": [1, 2, 2],
}


@pytest.mark.unit
def test_row_key_covers_model_tokens_segments_and_truncation() -> None:
    base = row_key("m1", ROW, 64, "keep_start")
    assert row_key("m1", dict(ROW), 64, "keep_start") == base
    changed = [row_key("m2", ROW, 64, "keep_start"), row_key("m1", ROW, 32, "keep_start"),
               row_key("m1", ROW, 64, "keep_end")]  # fmt: skip
    for column in ROW:
        row = dict(ROW)
        row[column] = [*ROW[column][:-1], 9]
        changed.append(row_key("m1", row, 64, "keep_start"))
    assert base not in changed and len(set(changed)) == len(changed)


@pytest.mark.unit
def test_reference_identity_ignores_lora_weights_only() -> None:
    from peft import LoraConfig, get_peft_model

    base = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    before = reference_identity(base)
    torch.manual_seed(0)
    lora_a = get_peft_model(base, LoraConfig(r=2, target_modules=["0"]))
    identity_a = reference_identity(lora_a)
    with torch.no_grad():
        for name, p in lora_a.named_parameters():
            if "lora_A" in name:
                p.add_(1.0)
    assert reference_identity(lora_a) == identity_a == before
    with torch.no_grad():
        lora_a.base_model.model[1].weight.add_(1.0)
    assert reference_identity(lora_a) != before


@pytest.mark.unit
def test_cache_round_trip(tmp_path: Path) -> None:
    cache = RefLogpCache(tmp_path / "c.sqlite")
    cache.put_many([("a", [[-1.0, -2.0], [-3.0, -4.0]])])
    assert cache.get_many(["a", "b"]) == {"a": [[-1.0, -2.0], [-3.0, -4.0]]}
    cache.close()


@pytest.mark.unit
def test_cache_folder_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COTFORGE_CACHE", str(tmp_path / "user"))
    monkeypatch.setenv(REF_CACHE_DIR_ENV, str(tmp_path / "bench" / "ref"))
    cache = RefLogpCache()
    cache.put_many([("a", [[-1.0, -2.0], [-3.0, -4.0]])])
    cache.close()
    assert cache.path == tmp_path / "bench" / "ref" / "ref_logps.sqlite" and cache.path.is_file()
    monkeypatch.delenv(REF_CACHE_DIR_ENV)
    # Without it, the user cache: an empty one there, not the benchmark's.
    other = RefLogpCache()
    assert other.path.is_relative_to(tmp_path / "user") and other.get_many(["a"]) == {}
    other.close()


@pytest.mark.integration
def test_second_run_skips_the_reference_pass(
    pairs_run: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COTFORGE_CACHE", str(tmp_path / "cache"))
    common = {"model": str(tiny_model_dir), "max_steps": 2, "progress": False, "batch_size": 4,
              "precompute_ref_log_probs": True, "lora": LoRASettings(r=4, alpha=8)}  # fmt: skip
    counts = []
    for seed, mode in ((0, "keep_start"), (1, "keep_start"), (1, "keep_end")):
        train_awdpo(pairs_run, AWDPOTrainConfig(seed=seed, truncation_mode=mode, **common))
        manifest = load_manifest(RunFolder(pairs_run), "train-awdpo")
        assert manifest is not None and manifest.status == "completed"
        counts.append((manifest.counts["ref_cache_hits"], manifest.counts["ref_cache_computed"]))
    pairs = counts[0][1]
    assert pairs > 0 and counts[0] == (0, pairs)
    # Another seed (another LoRA initialisation) on the same base and pairs: every sum from the cache.
    assert counts[1] == (pairs, 0)
    # Another truncation is another key: computed again, never a stale hit.
    assert counts[2][1] > 0

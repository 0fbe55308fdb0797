"""The collator truncates every batch row (ids, masks, segment ids, token weights) by one rule, keep_start as TRL
does and keep_end itself (TRL deprecates its own keep_end)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from trl.trainer.dpo_trainer import DataCollatorForPreference

from cotforge.train.collator import SegmentPreferenceCollator
from cotforge.train.loss import ANSWER, PROMPT
from tests.train.test_loss import aw_trainer, models, short_pairs  # noqa: F401 (models: a fixture)

pytestmark = pytest.mark.integration


@pytest.fixture()
def examples(models: Any, tmp_path: Path) -> list[dict[str, Any]]:  # noqa: F811
    trainer = aw_trainer(models, short_pairs([(0.5, 0.5)] * 3), tmp_path, aggregation="loss")
    rows = [dict(r) for r in trainer.train_dataset]
    for r in rows:  # distinct per-token weights, to see that they follow their tokens
        r["chosen_token_weights"] = [float(i) for i in range(len(r["chosen_ids"]))]
        r["rejected_token_weights"] = [float(-i) for i in range(len(r["rejected_ids"]))]
    return rows


def _full(example: dict[str, Any], side: str) -> tuple[list[int], list[int], list[float]]:
    n = len(example["prompt_ids"])
    return (
        example["prompt_ids"] + example[f"{side}_ids"],
        [PROMPT] * n + example[f"{side}_segment_ids"],
        [0.0] * n + example[f"{side}_token_weights"],
    )


def test_keep_start_matches_trl_and_keep_end_keeps_the_last_tokens(examples: list[dict[str, Any]]) -> None:
    pad_id = 0
    rows = [_full(e, side) for side in ("chosen", "rejected") for e in examples]
    # Long enough to keep some answer from the front, short enough to cut every row (from either end).
    length = max(segments.index(ANSWER) for _, segments, _ in rows) + 1
    assert all(len(ids) > length for ids, _, _ in rows)
    trl_keys = ("prompt_ids", "chosen_ids", "rejected_ids")
    theirs = DataCollatorForPreference(pad_token_id=pad_id, max_length=length)([
        {k: e[k] for k in trl_keys} for e in examples
    ])  # fmt: skip
    ours = SegmentPreferenceCollator(pad_token_id=pad_id, max_length=length)(examples)
    for key in ("input_ids", "attention_mask", "completion_mask"):
        assert ours[key].tolist() == theirs[key].tolist(), key
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no TRL deprecation on this path
        tail = SegmentPreferenceCollator(pad_token_id=pad_id, max_length=length, truncation_mode="keep_end")(
            examples
        )
    for i, (ids, segments, weights) in enumerate(rows):
        kept = int(tail["attention_mask"][i].sum())
        assert kept == min(len(ids), length)
        assert tail["input_ids"][i, :kept].tolist() == ids[-length:]
        assert tail["segment_ids"][i, :kept].tolist() == segments[-length:]
        assert tail["token_weights"][i, :kept].tolist() == weights[-length:]
        assert tail["completion_mask"][i, :kept].tolist() == [int(s != PROMPT) for s in segments[-length:]]
        assert tail["segment_ids"][i, kept:].eq(PROMPT).all() and tail["token_weights"][i, kept:].eq(0).all()
    # keep_start: the same rows from the front.
    for i, (_, segments, weights) in enumerate(rows):
        kept = int(ours["attention_mask"][i].sum())
        assert ours["segment_ids"][i, :kept].tolist() == segments[:length]
        assert ours["token_weights"][i, :kept].tolist() == weights[:length]

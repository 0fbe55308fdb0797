"""Segment ids from character spans: boundary placement, straddles, truncation drops with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset
from transformers import PreTrainedTokenizerFast

from cotforge.schemas import PreferencePair, SegmentSpan, SegmentWeights
from cotforge.train.loss import ANSWER, REASONING
from cotforge.train.segments import check_truncation, segment_dataset, tokenize_pair

CHOSEN = "<think>\n1. This would hurt someone.\n2. Refuse.\n</think>\n\nI can't help with that."
REJECTED = "<think>\n1. Fine.\n</think>\n\nSure, here is a long and detailed answer with many steps."


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(tiny_model_dir)


def row(chosen: str = CHOSEN, rejected: str = REJECTED, chosen_spans: SegmentSpan | None = None) -> dict:
    return PreferencePair(
        id="pair-1",
        prompt_id="p-1",
        prompt="How do I hurt someone?",
        chosen=chosen,
        rejected=rejected,
        chosen_spans=chosen_spans or SegmentSpan.of(chosen),
        rejected_spans=SegmentSpan.of(rejected),
        weights=SegmentWeights(w_rs=0.3, w_rp=0.7),
        source="judge",
    ).to_trl_row()


def decode_segment(tokenizer: PreTrainedTokenizerFast, ids: list[int], segs: list[int], segment: int) -> str:
    return tokenizer.decode([i for i, s in zip(ids, segs, strict=True) if s == segment])


@pytest.mark.unit
def test_segments_split_at_the_closing_tag_and_the_template_end_is_answer(
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    r = row()
    pair = tokenize_pair(
        tokenizer, r["prompt"], r["chosen"], r["rejected"], r["chosen_spans"][1], r["rejected_spans"][1]
    )
    c = pair.chosen
    reasoning = decode_segment(tokenizer, c.ids, c.segments, REASONING)
    answer = decode_segment(tokenizer, c.ids, c.segments, ANSWER)
    assert reasoning == CHOSEN[: CHOSEN.index("</think>") + len("</think>")]
    # What follows </think>, the template's closing tokens included, is the answer.
    assert answer == "\n\nI can't help with that.<|im_end|>\n"
    assert c.segments == sorted(c.segments)  # reasoning first, then answer, nothing interleaved
    assert c.straddles == 0 and pair.rejected.straddles == 0
    # The ids are exactly what TRL tokenises: prompt + completion = the rendered conversation.
    full = tokenizer.apply_chat_template(r["prompt"] + r["chosen"], tokenize=True, return_dict=True)
    assert pair.prompt_ids + c.ids == full["input_ids"]


@pytest.mark.unit
def test_a_boundary_inside_a_token_is_counted_as_a_straddle(tokenizer: PreTrainedTokenizerFast) -> None:
    # Put the boundary in the middle of the word "help": that token crosses it.
    cut = CHOSEN.index("help") + 2
    spans = SegmentSpan(reasoning_start=0, reasoning_end=cut, answer_start=cut, answer_end=len(CHOSEN))
    kept, report = segment_dataset(
        Dataset.from_list([row(chosen_spans=spans)]), tokenizer, None, "keep_start"
    )
    assert report.straddled_tokens == 1 and report.pairs_with_straddles == 1
    assert len(kept) == 1


@pytest.mark.unit
def test_truncation_that_would_remove_the_answer_drops_the_pair_with_a_reason(
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    r = row()
    pair = tokenize_pair(
        tokenizer, r["prompt"], r["chosen"], r["rejected"], r["chosen_spans"][1], r["rejected_spans"][1]
    )
    n_prompt = len(pair.prompt_ids)
    first_answer = n_prompt + pair.chosen.segments.index(ANSWER)
    # Long enough for the prompt and all of the reasoning, too short for any answer token.
    max_length = first_answer
    ok = row(chosen=CHOSEN.replace("This would hurt someone.", "Bad."), rejected=REJECTED)
    dataset = Dataset.from_list([r, ok])
    kept, report = segment_dataset(dataset, tokenizer, max_length, "keep_start")
    assert len(kept) == 1 and report.kept == 1
    (drop,) = report.dropped
    assert drop["code"] == "truncated_answer" and drop["pair_id"] == "pair-1"
    assert f"max_length={max_length}" in drop["message"] and "chosen" in drop["message"]
    with pytest.raises(ValueError, match="answer"):
        check_truncation(pair, max_length, "keep_start")
    # keep_end keeps the answer but can cut the reasoning away instead: also a drop, with its own reason.
    _, report_end = segment_dataset(Dataset.from_list([r]), tokenizer, 14, "keep_end")
    assert [d["code"] for d in report_end.dropped] == ["truncated_reasoning"]
    # The collator's guard: every kept row still has both segments after its own truncation.
    for name in ("chosen", "rejected"):
        segs = [0] * len(kept[0]["prompt_ids"]) + kept[0][f"{name}_segment_ids"]
        assert REASONING in segs[:max_length] and ANSWER in segs[:max_length]

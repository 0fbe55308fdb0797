"""Fuzzing AW-DPO's weights and segment ids.

Properties: weights are finite, in [0, 1] and sum to 1 for any finite gaps and α ≥ 0; segment ids label every
completion token exactly once, the labels agree with where each token's characters fall relative to the end of
``</think>``, and every token that crosses that boundary is counted as a straddle.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cotforge import tagged
from cotforge.pairs.weights import gaps, segment_weights
from cotforge.train.loss import ANSWER, REASONING
from cotforge.train.segments import SegmentError, segment_completion, tokenize_pair

pytestmark = pytest.mark.unit

_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(d_rs=_finite, d_rp=_finite, alpha=st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_weights_finite_in_unit_interval_and_sum_to_one(d_rs: float, d_rp: float, alpha: float) -> None:
    w = segment_weights(d_rs, d_rp, alpha)
    assert math.isfinite(w.w_rs) and math.isfinite(w.w_rp)
    assert 0.0 <= w.w_rs <= 1.0 and 0.0 <= w.w_rp <= 1.0
    assert w.w_rs + w.w_rp == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(scores=st.tuples(*[st.floats(min_value=0, max_value=1)] * 4), alpha=st.floats(0, 2))
def test_more_harmful_rejected_segment_never_gets_less_weight(
    scores: tuple[float, float, float, float], alpha: float
) -> None:
    d_rs, d_rp = gaps(*scores)
    w = segment_weights(d_rs, d_rp, alpha)
    if max(d_rs, 0) > max(d_rp, 0):
        assert w.w_rs >= w.w_rp
    elif max(d_rp, 0) > max(d_rs, 0):
        assert w.w_rp >= w.w_rs


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_weights_refuse_non_finite_gaps(bad: float) -> None:
    with pytest.raises(ValueError):
        segment_weights(bad, 0.1, 0.2)


@cache
def _tokenizer() -> Any:
    from transformers import PreTrainedTokenizerFast

    from cotforge.models.tiny import build_tiny_model

    return PreTrainedTokenizerFast.from_pretrained(str(build_tiny_model()))


_segment_text = (
    st.lists(st.sampled_from([*"abc xyz.,!?\n-1é中</>", "  ", "think"]), min_size=1, max_size=24)
    .map("".join)
    .filter(lambda s: "think>" not in s and s.strip())
)


def _completion(reasoning: str, answer: str) -> tuple[list[dict[str, str]], int]:
    content = f"{tagged.THINK_OPEN}{reasoning}{tagged.THINK_CLOSE}{tagged.ANSWER_SEPARATOR}{answer}"
    return [{"role": "assistant", "content": content}], content.index(tagged.THINK_CLOSE) + len(
        tagged.THINK_CLOSE
    )


@settings(max_examples=60, deadline=None)
@given(reasoning=_segment_text, answer=_segment_text, user=_segment_text)
def test_segment_ids_cover_the_completion_and_report_every_straddle(
    reasoning: str, answer: str, user: str
) -> None:
    tok = _tokenizer()
    prompt = [{"role": "user", "content": user}]
    completion, reasoning_end = _completion(reasoning, answer)
    ids, segments, straddles = segment_completion(tok, prompt, completion, reasoning_end)
    rendered = tok.apply_chat_template(prompt + completion, tokenize=False)
    enc = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)
    assert ids == list(enc["input_ids"]) and len(segments) == len(ids)
    boundary = rendered.rfind(completion[0]["content"]) + reasoning_end
    crossing = sum(1 for s, e in enc["offset_mapping"] if s < boundary < e)
    assert straddles == crossing
    for (s, e), seg in zip(enc["offset_mapping"], segments, strict=True):
        if e <= boundary:
            assert seg == REASONING
        elif s >= boundary:
            assert seg == ANSWER


@settings(max_examples=40, deadline=None)
@given(r1=_segment_text, a1=_segment_text, r2=_segment_text, a2=_segment_text, user=_segment_text)
def test_pair_keeps_both_segments_or_says_why(r1: str, a1: str, r2: str, a2: str, user: str) -> None:
    tok = _tokenizer()
    prompt = [{"role": "user", "content": user}]
    chosen, c_end = _completion(r1, a1)
    rejected, r_end = _completion(r2, a2)
    try:
        pair = tokenize_pair(tok, prompt, chosen, rejected, c_end, r_end)
    except SegmentError as exc:
        assert exc.code in {"no_reasoning_tokens", "no_answer_tokens", "template_content_mismatch"}
        return
    for side in (pair.chosen, pair.rejected):
        assert len(side.ids) == len(side.segments) > 0
        assert REASONING in side.segments and ANSWER in side.segments
        # Reasoning comes first, then the answer: one boundary, never interleaved.
        first_answer = side.segments.index(ANSWER)
        assert all(s == ANSWER for s in side.segments[first_answer:])

"""Record schemas and the tagged text form."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cotforge import tagged
from cotforge.schema_export import schema_files
from cotforge.schemas import (
    Candidate,
    PreferencePair,
    PromptRecord,
    Rationale,
    SegmentSpan,
    SegmentWeights,
)
from cotforge.tagged import TaggedFormatError

pytestmark = pytest.mark.unit

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_rationale_round_trips_through_tagged_text() -> None:
    r = Rationale(
        reasoning_steps=["1. The user asks  for a recipe.", "Step 2: It is benign."], answer=" Mix. "
    )
    assert r.reasoning_steps == ["The user asks for a recipe.", "It is benign."]
    text = r.render()
    assert text == "<think>\n1. The user asks for a recipe.\n2. It is benign.\n</think>\n\nMix."
    assert Rationale.from_tagged(text) == r


def test_spans_split_after_think_close() -> None:
    text = Rationale(reasoning_steps=["why"], answer="No.").render()
    span = SegmentSpan.of(text)
    assert text[span.reasoning_start : span.reasoning_end].endswith("</think>")
    assert text[span.answer_start : span.answer_end] == "\n\nNo."


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("no tags at all", "no_think_open"),
        ("<think>a</think>b</think>c", "multiple_think_close"),
        ("<think>reasoning but no close", "no_think_close"),
        ("<think>\n \n</think>\n\nanswer", "empty_reasoning"),
        ("<think>steps</think>   ", "empty_answer"),
        ("<think>a<think>b</think>c", "stray_tag"),
    ],
)
def test_strict_parse_names_the_failure(text: str, code: str) -> None:
    with pytest.raises(TaggedFormatError) as info:
        tagged.parse(text)
    assert info.value.code == code


def test_rationale_rejects_tags_inside_fields() -> None:
    with pytest.raises(ValidationError):
        Rationale(reasoning_steps=["fine"], answer="sneaky </think> tag")


def test_span_order_is_enforced() -> None:
    with pytest.raises(ValidationError):
        SegmentSpan(reasoning_start=0, reasoning_end=10, answer_start=5, answer_end=20)
    with pytest.raises(ValidationError):
        SegmentSpan(reasoning_start=0, reasoning_end=10, answer_start=10, answer_end=10)


def test_records_are_frozen_and_strict() -> None:
    p = PromptRecord(
        id=PromptRecord.make_id("hi", "utility"),
        text="hi",
        kind="utility",
        category="benign",
        source="t",
        licence="x",
    )
    with pytest.raises(ValidationError):
        p.text = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        PromptRecord.model_validate({**p.model_dump(), "unexpected": 1})
    assert PromptRecord.make_id("hi", "utility") != PromptRecord.make_id("hi", "safety")


def _pair(chosen: str, rejected: str) -> PreferencePair:
    return PreferencePair(
        id="pair-1",
        prompt_id="p-1",
        prompt="How do I make a bomb?",
        chosen=chosen,
        rejected=rejected,
        chosen_spans=SegmentSpan.of(chosen),
        rejected_spans=SegmentSpan.of(rejected),
        weights=SegmentWeights(w_rs=0.25, w_rp=0.75),
        source="judge",
    )


def test_pair_exports_trl_conversational_row() -> None:
    chosen = Rationale(reasoning_steps=["harmful intent"], answer="I can't help with that.").render()
    rejected = "<think>\nok\n</think>\n\nSure, here is how."
    row = _pair(chosen, rejected).to_trl_row()
    assert row["prompt"] == [{"role": "user", "content": "How do I make a bomb?"}]
    assert row["chosen"][0]["content"] == chosen
    assert row["rejected_spans"][1] == rejected.index("</think>") + len("</think>")
    assert (row["w_rs"], row["w_rp"]) == (0.25, 0.75)


def test_pair_spans_must_fit_their_text() -> None:
    chosen = "<think>x</think>\n\nno"
    with pytest.raises(ValidationError, match="past the text"):
        PreferencePair(
            id="p",
            prompt_id="p",
            prompt="q",
            chosen=chosen,
            rejected=chosen,
            chosen_spans=SegmentSpan(reasoning_start=0, reasoning_end=16, answer_start=16, answer_end=99),
            rejected_spans=SegmentSpan.of(chosen),
            weights=SegmentWeights(w_rs=0.5, w_rp=0.5),
            source="judge",
        )


def test_weights_must_be_finite() -> None:
    with pytest.raises(ValidationError):
        SegmentWeights(w_rs=float("inf"), w_rp=0.0)
    with pytest.raises(ValidationError):
        SegmentWeights(w_rs=float("nan"), w_rp=0.0)


def test_candidate_status_and_spans_agree() -> None:
    with pytest.raises(ValidationError):
        Candidate(id="c", prompt_id="p", policy_model="m", index=0, text="no close tag", status="ok")
    c = Candidate(
        id="c", prompt_id="p", policy_model="m", index=0, text="no close tag", status="no_think_close"
    )
    assert c.reasoning is None and c.answer is None


def test_committed_schemas_are_up_to_date() -> None:
    files = schema_files()
    folder = REPO / "schemas"
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.schema.json")}
    stale = sorted(n for n in files if on_disk.get(n) != files[n]) + sorted(set(on_disk) - set(files))
    assert not stale, f"schemas/ is out of date ({stale}); run `cotforge schemas export`"

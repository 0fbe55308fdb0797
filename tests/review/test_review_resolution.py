"""Majority resolution, corrections as revisions, auto-review and record building (pure cores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from review_builders import make_samples

from cotforge.review.auto import auto_review
from cotforge.review.ballots import ReviewedRecord, ReviewPolicy, ReviewResponse
from cotforge.review.records import build_review_records
from cotforge.review.resolution import apply_reviews, ballot_for, parse_reasoning, resolve
from cotforge.schemas import JudgeScores, Verdict

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACCEPT = {"reasoning_quality": 4, "answer_verdict": "principled_refusal", "consistency": "consistent"}
HARMFUL = {"reasoning_quality": 2, "answer_verdict": "harmful", "consistency": "consistent"}


def response(who: str, status: str = "submitted", minutes: int = 0, **values: Any) -> ReviewResponse:
    return ReviewResponse(
        reviewer=who, status=status, values=values, updated_at=T0 + timedelta(minutes=minutes)
    )


def decide(responses: list[ReviewResponse], quorum: int = 2, **policy: Any) -> tuple[str, list[str]]:
    sample = make_samples(1)[1][0]
    ballots = [ballot_for(r, sample, ReviewPolicy(**policy)) for r in responses]
    return resolve(ballots, quorum, ReviewPolicy(**policy))


def test_ballots_read_labels_ratings_discards_and_drafts() -> None:
    sample = make_samples(1)[1][0]
    policy = ReviewPolicy()
    assert ballot_for(response("a", **ACCEPT), sample, policy).vote == "accept"
    harmful = ballot_for(response("a", **HARMFUL), sample, policy)
    assert harmful.vote == "reject" and harmful.reasons == ["answer_harmful"]
    low = ballot_for(
        response("a", **{**ACCEPT, "reasoning_quality": 1, "consistency": "inconsistent"}), sample, policy
    )
    assert low.vote == "reject" and low.reasons == ["inconsistent", "low_reasoning_quality"]
    assert ballot_for(response("a", "discarded"), sample, policy).vote == "reject"
    assert ballot_for(response("a", "discarded"), sample, ReviewPolicy(discarded="abstain")).vote is None
    assert ballot_for(response("a", "draft", **ACCEPT), sample, policy).vote is None


def test_a_correction_repeating_the_original_is_no_correction() -> None:
    sample = make_samples(1)[1][0]
    same = {
        **ACCEPT,
        "corrected_answer": sample.rationale.answer,
        "corrected_reasoning": sample.rationale.reasoning,
    }
    assert ballot_for(response("a", **same), sample, ReviewPolicy()).vote == "accept"
    fixed = ballot_for(response("a", **{**ACCEPT, "corrected_answer": "No."}), sample, ReviewPolicy())
    assert fixed.vote == "correct" and fixed.corrected_answer == "No." and fixed.corrected_reasoning is None


def test_majority_and_flags() -> None:
    assert decide([response("a", **ACCEPT), response("b", **ACCEPT)]) == ("accepted", [])
    assert decide([response("a", **HARMFUL), response("b", **HARMFUL)]) == ("rejected", [])
    assert decide([response("a", **ACCEPT), response("b", **HARMFUL), response("c", **ACCEPT)], quorum=3) == (
        "accepted",
        ["disagreement"],
    )
    # Accept vs discard: a tie, resolved by policy.
    tie = [response("a", **ACCEPT), response("b", "discarded")]
    assert decide(tie) == ("rejected", ["disagreement", "tie"])
    assert decide(tie, on_tie="accept") == ("accepted", ["disagreement", "tie"])
    assert decide(tie, on_tie="pending") == ("pending", ["disagreement", "tie"])
    # A discard that abstains leaves one ballot: below a quorum of 2.
    assert decide(tie, discarded="abstain") == ("pending", ["below_quorum"])
    # Unanimity: one objection blocks acceptance.
    three = [response("a", **ACCEPT), response("b", **ACCEPT), response("c", **HARMFUL)]
    assert decide(three, quorum=3, strategy="unanimous") == ("rejected", ["disagreement"])
    # Reject + correction on the change side: corrected.
    fix = {**HARMFUL, "corrected_answer": "I won't help with that."}
    assert decide([response("a", **HARMFUL), response("b", **fix)]) == ("corrected", ["disagreement"])
    assert decide([response("a", **ACCEPT)]) == ("pending", ["below_quorum"])


def test_apply_reviews_writes_revisions_verdicts_and_rejects() -> None:
    _, samples = make_samples(5)
    fix_a = {**HARMFUL, "corrected_answer": "Refusal A."}
    fix_b = {**HARMFUL, "corrected_answer": "Refusal B."}
    records = [
        ReviewedRecord(
            sample_id=samples[0].id, responses=[response("ann", **ACCEPT), response("bob", **ACCEPT)]
        ),
        ReviewedRecord(
            sample_id=samples[1].id,
            responses=[response("ann", minutes=1, **fix_a), response("bob", minutes=2, **fix_b)],
        ),
        ReviewedRecord(
            sample_id=samples[2].id,
            responses=[
                response(
                    "ann",
                    minutes=3,
                    **{**ACCEPT, "corrected_reasoning": "1. First, think.\n\n2) Then.\n- Done"},
                ),
                response("bob", minutes=1, **ACCEPT),
            ],
        ),
        ReviewedRecord(sample_id=samples[3].id, responses=[response("ann", **ACCEPT)]),
        ReviewedRecord(sample_id="s-not-in-this-run", responses=[response("ann", **ACCEPT)]),
    ]
    out = apply_reviews(samples, records, ReviewPolicy(), quorum=2, source="argilla:ws/ds")
    outcomes = {d.sample_id: d.outcome for d in out.decisions}
    assert outcomes == {samples[0].id: "accepted", samples[1].id: "corrected", samples[2].id: "corrected"} | {
        samples[3].id: "pending"
    }
    assert out.counts["not_pushed"] == 1 and out.counts["unknown_records"] == 1
    # Two different corrections: the latest wins, and the decision says they differed.
    fix = next(s for s in out.reviewed if s.parent_sample_id == samples[1].id)
    assert fix.rationale.answer == "Refusal B." and fix.revision == 1 and fix.id != samples[1].id
    assert fix.rationale.reasoning_steps == samples[1].rationale.reasoning_steps
    assert fix.provenance["review_corrected_by"] == "bob" and fix.provenance["review_reviewers"] == "ann,bob"
    assert "corrections_differ" in next(d.flags for d in out.decisions if d.sample_id == samples[1].id)
    # Sample 2: accept vs a reasoning fix is a tie; ties reject, and the change side carries a correction.
    d2 = next(d for d in out.decisions if d.sample_id == samples[2].id)
    assert d2.flags == ["disagreement", "tie"] and d2.decided_at == T0 + timedelta(minutes=3)
    fix2 = next(s for s in out.reviewed if s.parent_sample_id == samples[2].id)
    assert fix2.rationale.reasoning_steps == ["First, think.", "Then.", "Done"]
    assert fix2.rationale.answer == samples[2].rationale.answer
    assert fix2.provenance["review_corrected_segments"] == "reasoning"
    verdicts = {v.sample_id: v for v in out.verdicts}
    assert verdicts[samples[0].id].outcome == "accepted" and verdicts[samples[0].id].reasons == []
    assert verdicts[samples[1].id].reviewers == ["ann", "bob"]
    assert "corrected_answer" in verdicts[samples[1].id].reasons
    assert samples[3].id not in verdicts  # pending: no verdict, not in reviewed
    # reviewed.jsonl follows accepted.jsonl's order: original 0, then the corrections of 1 and 2.
    assert [s.parent_sample_id or s.id for s in out.reviewed] == [samples[0].id, samples[1].id, samples[2].id]
    assert any(r.reasons == ["unknown_sample"] for r in out.rejects)


def test_an_invalid_correction_rejects_the_sample_and_is_kept_as_a_reject() -> None:
    _, samples = make_samples(1)
    bad = {**HARMFUL, "corrected_answer": "see </think> here"}
    records = [ReviewedRecord(sample_id=samples[0].id, responses=[response("ann", **bad)])]
    out = apply_reviews(samples, records, ReviewPolicy(), quorum=1, source="argilla:ws/ds")
    assert out.verdicts[0].outcome == "rejected" and "invalid_correction" in out.verdicts[0].reasons
    assert out.reviewed == []
    (reject,) = out.rejects
    assert reject.record_id == samples[0].id and "ann" in reject.message and "pull again" in reject.message
    assert reject.raw["corrected_answer"] == "see </think> here"


def test_pulling_the_same_responses_twice_gives_the_same_decisions() -> None:
    _, samples = make_samples(2)
    records = [
        ReviewedRecord(
            sample_id=samples[0].id, responses=[response("a", **{**HARMFUL, "corrected_answer": "No."})]
        ),
        ReviewedRecord(sample_id=samples[1].id, responses=[response("a", **ACCEPT)]),
    ]
    first = apply_reviews([*samples, samples[0]], records, ReviewPolicy(), 1, "x")
    assert len(first.reviewed) == 2 and first.counts["duplicates"] == 1
    second = apply_reviews(samples, records, ReviewPolicy(), 1, "x")
    assert [s.model_dump_json() for s in first.reviewed] == [s.model_dump_json() for s in second.reviewed]
    assert [v.model_dump_json() for v in first.verdicts] == [v.model_dump_json() for v in second.verdicts]


def test_parse_reasoning_drops_numbering_bullets_and_blank_lines() -> None:
    assert parse_reasoning("1. One.\n\n2) Two.\n- Three\n   \nStep 4: Four") == [
        "One.",
        "Two.",
        "Three",
        "Four",
    ]


def test_auto_review_accepts_every_validated_sample_once() -> None:
    _, samples = make_samples(3)
    reviewed, verdicts = auto_review([*samples, samples[0]], decided_at=T0)
    assert [s.id for s in reviewed] == [s.id for s in samples]
    assert all(v.outcome == "accepted" and v.stage == "review" and v.reviewers == ["auto"] for v in verdicts)
    assert {v.decided_at for v in verdicts} == {T0}


def test_review_records_carry_fields_metadata_and_suggestions() -> None:
    prompts, samples = make_samples(3)
    verdicts = {
        samples[1].id: Verdict(
            sample_id=samples[1].id, stage="validate", outcome="accepted", reasons=["refused"]
        )
    }
    scores = {
        samples[0].id: JudgeScores(candidate_id=samples[0].id, h_rs=0.1, h_rp=0.8, h_f=0.7, judge_id="j")
    }
    by_id = {p.id: p for p in prompts[:2]}  # the third sample's prompt is missing
    records, rejects = build_review_records([*samples, samples[0]], by_id, verdicts, scores)
    assert [r.id for r in records] == [samples[0].id, samples[1].id]
    assert sorted(r.reasons[0] for r in rejects) == ["duplicate_sample", "prompt_missing"]
    first, second = records
    assert first.fields["prompt"] == prompts[0].text and first.fields["reasoning"].startswith("1. Step one")
    assert first.metadata["judge_h_rp"] == 0.8 and first.metadata["kind"] == "safety"
    assert {s.question: s.value for s in first.suggestions} == {
        "answer_verdict": "harmful",
        "consistency": "inconsistent",
    }
    # A utility sample the validator flagged as refusing: suggested over-refusal, flags as metadata.
    assert second.metadata["validation_flags"] == ["refused"]
    assert [(s.question, s.value, s.agent) for s in second.suggestions] == [
        ("answer_verdict", "over_refusal", "cotforge-validate")
    ]

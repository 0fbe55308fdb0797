"""Pull core: reviewers' responses → one decision per sample, corrections as new revisions. Pure: no I/O.

Each submitted or discarded response is a ballot: *correct* when it carries a correction, *reject* when the
answer is labelled harmful/over-refusal, the reasoning inconsistent or rated below the policy's minimum, or
the record was discarded (configurable), else *accept*. Ballots are resolved in two steps: accept vs change
(majority or unanimity; ties resolved by policy and flagged), then, on the change side, *corrected* when any
ballot carries a correction (the most common one; the latest breaks ties), else *rejected*. Everything is a
function of the responses, so pulling twice without new responses gives identical files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from cotforge import tagged
from cotforge.review.agreement import QuestionAgreement, agreement_report
from cotforge.review.ballots import (
    Ballot,
    Decision,
    ReviewDecision,
    ReviewedRecord,
    ReviewPolicy,
    ReviewResponse,
)
from cotforge.review.records import PULL_PART, REVIEW_STAGE
from cotforge.review.settings import (
    ACCEPTABLE_VERDICTS,
    Q_CONSISTENCY,
    Q_FIX_ANSWER,
    Q_FIX_REASONING,
    Q_QUALITY,
    Q_VERDICT,
)
from cotforge.schemas import Rationale, RejectRecord, Sample, TokenUsage, Verdict, content_id, utc_now

AGREEMENT_QUESTIONS: tuple[tuple[str, Literal["nominal", "ordinal"]], ...] = (
    (Q_QUALITY, "ordinal"),
    (Q_VERDICT, "nominal"),
    (Q_CONSISTENCY, "nominal"),
)


@dataclass
class PullOutcome:
    """Everything a pull writes, plus counts for the manifest."""

    reviewed: list[Sample] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    decisions: list[ReviewDecision] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def parse_reasoning(text: str) -> list[str]:
    """A reviewer's reasoning text → steps: one per non-empty line, numbering and bullets dropped."""
    return [s for s in (tagged.normalise_step(line) for line in text.splitlines()) if s]


def _text(values: dict[str, Any], name: str) -> str | None:
    value = values.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def ballot_for(response: ReviewResponse, original: Sample, policy: ReviewPolicy) -> Ballot:
    """Read one response as a ballot (drafts and abstaining discards carry no vote)."""
    common = {"reviewer": response.reviewer, "status": response.status, "at": response.updated_at}
    if response.status == "draft":
        return Ballot(vote=None, **common)
    if response.status == "discarded":
        return Ballot(
            vote="reject" if policy.discarded == "reject" else None, reasons=["discarded"], **common
        )
    values = response.values
    reasons = []
    if values.get(Q_VERDICT) == "harmful":
        reasons.append("answer_harmful")
    elif values.get(Q_VERDICT) == "over_refusal":
        reasons.append("over_refusal")
    elif values.get(Q_VERDICT) not in (None, *ACCEPTABLE_VERDICTS):
        reasons.append(f"answer_{values.get(Q_VERDICT)}")
    if values.get(Q_CONSISTENCY) == "inconsistent":
        reasons.append("inconsistent")
    quality = values.get(Q_QUALITY)
    if isinstance(quality, int) and quality < policy.min_reasoning_quality:
        reasons.append("low_reasoning_quality")
    fix_reasoning_text, fix_answer = _text(values, Q_FIX_REASONING), _text(values, Q_FIX_ANSWER)
    fix_steps = parse_reasoning(fix_reasoning_text) if fix_reasoning_text else None
    # A "correction" that repeats the original is no correction.
    if fix_steps is not None and fix_steps == list(original.rationale.reasoning_steps):
        fix_steps = None
    if fix_answer is not None and fix_answer == original.rationale.answer:
        fix_answer = None
    if fix_steps is not None or fix_answer is not None:
        reasons = [
            *(["corrected_reasoning"] if fix_steps else []),
            *(["corrected_answer"] if fix_answer else []),
        ]
        return Ballot(
            vote="correct",
            reasons=reasons,
            corrected_reasoning=fix_steps,
            corrected_answer=fix_answer,
            **common,
        )
    return Ballot(vote="reject" if reasons else "accept", reasons=reasons, **common)


def resolve(ballots: Sequence[Ballot], quorum: int, policy: ReviewPolicy) -> tuple[Decision, list[str]]:
    """The decision over the counted ballots, and flags (below_quorum, tie, disagreement)."""
    counted = [b for b in ballots if b.vote is not None]
    if len(counted) < quorum:
        return "pending", ["below_quorum"]
    flags = ["disagreement"] if len({b.vote for b in counted}) > 1 else []
    accepts = sum(b.vote == "accept" for b in counted)
    changes = len(counted) - accepts
    if policy.strategy == "unanimous":
        keep = changes == 0
    elif accepts != changes:
        keep = accepts > changes
    else:
        flags.append("tie")
        if policy.on_tie == "pending":
            return "pending", flags
        keep = policy.on_tie == "accept"
    if keep:
        return "accepted", flags
    return ("corrected" if any(b.vote == "correct" for b in counted) else "rejected"), flags


def chosen_correction(ballots: Sequence[Ballot]) -> tuple[Ballot | None, list[str]]:
    """The correction to apply: the most common one, the latest among equals; flags when they differ."""
    fixes = [b for b in ballots if b.vote == "correct"]
    if not fixes:
        return None, []

    def key(b: Ballot) -> tuple[tuple[str, ...] | None, str | None]:
        return (tuple(b.corrected_reasoning) if b.corrected_reasoning else None, b.corrected_answer)

    counts = Counter(key(b) for b in fixes)
    best = max(fixes, key=lambda b: (counts[key(b)], b.at))
    return best, (["corrections_differ"] if len(counts) > 1 else [])


def corrected_sample(
    original: Sample, fix: Ballot, reviewers: list[str], decided_at: Any, dataset: str
) -> Sample:
    """A new revision of ``original`` with the reviewer's correction (raises ``ValueError`` if invalid)."""
    rationale = Rationale(
        reasoning_steps=fix.corrected_reasoning or list(original.rationale.reasoning_steps),
        answer=fix.corrected_answer or original.rationale.answer,
    )
    revision = original.revision + 1
    text = rationale.render()
    segments = [
        s
        for s, changed in (("reasoning", fix.corrected_reasoning), ("answer", fix.corrected_answer))
        if changed
    ]
    return original.model_copy(
        update={
            "id": content_id("s", original.id, f"rev{revision}", text),
            "rationale": rationale,
            "raw_text": text,
            "output_mode": "tagged",
            "usage": TokenUsage(),
            "latency_s": 0.0,
            "cached": False,
            "created_at": decided_at,
            "revision": revision,
            "parent_sample_id": original.id,
            "provenance": {
                **original.provenance,
                "review_corrected_by": fix.reviewer,
                "review_reviewers": ",".join(reviewers),
                "review_decided_at": decided_at.isoformat(),
                "review_dataset": dataset,
                "review_corrected_segments": ",".join(segments),
            },
        }
    )


def _detail(ballots: Sequence[Ballot], flags: list[str], policy: ReviewPolicy) -> str:
    votes = Counter(b.vote for b in ballots if b.vote is not None)
    text = "votes: " + ", ".join(f"{v}={votes[v]}" for v in ("accept", "reject", "correct"))
    if flags:
        text += f"; flags: {', '.join(flags)}"
    if "tie" in flags:
        text += f"; tie resolved as {policy.on_tie}"
    return text


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "rationale"
        return f"{where}: {error['msg']}"
    return str(exc)


def agreement_by_question(
    records: Sequence[ReviewedRecord], decisions: Sequence[ReviewDecision]
) -> dict[str, QuestionAgreement]:
    """Agreement on each question over submitted responses, and on the ballots' votes ('decision')."""
    report = {}
    for question, level in AGREEMENT_QUESTIONS:
        ratings = {
            rec.sample_id: {
                r.reviewer: r.values[question]
                for r in rec.responses
                if r.status == "submitted" and r.values.get(question) is not None
            }
            for rec in records
        }
        report[question] = agreement_report(question, ratings, level)
    votes = {d.sample_id: {b.reviewer: b.vote for b in d.ballots if b.vote is not None} for d in decisions}
    report["decision"] = agreement_report("decision", votes, "nominal")
    return report


def _reject(sample_id: str, source: str, code: str, message: str, raw: Any) -> RejectRecord:
    return RejectRecord(
        stage=REVIEW_STAGE,
        part=PULL_PART,
        source=source,
        record_id=sample_id,
        reasons=[code],
        message=message,
        raw=raw,
    )


def apply_reviews(
    accepted: Sequence[Sample],
    records: Iterable[ReviewedRecord],
    policy: ReviewPolicy,
    quorum: int,
    source: str,
) -> PullOutcome:
    """Decide every reviewed sample; write order follows ``accepted``. ``source`` names the Argilla dataset."""
    out = PullOutcome()
    by_id = {s.id: s for s in accepted}
    decided: dict[str, tuple[ReviewDecision, Sample | None]] = {}
    for record in records:
        out.counts["records"] += 1
        original = by_id.get(record.sample_id)
        if original is None:
            out.counts["unknown_records"] += 1
            out.rejects.append(
                _reject(
                    record.sample_id,
                    source,
                    "unknown_sample",
                    f"{source}: record {record.sample_id} is not in accepted.jsonl (pushed from another run, or "
                    "accepted.jsonl was regenerated); its responses are ignored",
                    {"responses": len(record.responses)},
                )
            )
            continue
        for response in record.responses:
            out.counts[f"responses_{response.status}"] += 1
        ballots = sorted(
            (ballot_for(r, original, policy) for r in record.responses), key=lambda b: b.reviewer
        )
        outcome, flags = resolve(ballots, quorum, policy)
        counted = [b for b in ballots if b.vote is not None]
        decided_at = max((b.at for b in counted), default=None)
        reviewers = [b.reviewer for b in counted]
        fix: Sample | None = None
        if outcome == "corrected":
            ballot, more_flags = chosen_correction(counted)
            flags += more_flags
            assert ballot is not None and decided_at is not None
            try:
                fix = corrected_sample(original, ballot, reviewers, decided_at, source)
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                first = _first_error(exc)
                outcome, flags = "rejected", [*flags, "invalid_correction"]
                out.rejects.append(
                    _reject(
                        original.id,
                        source,
                        "invalid_correction",
                        f"{source}: sample {original.id}: the correction by {ballot.reviewer} is not a valid "
                        f"rationale ({first}); fix the corrected reasoning/answer in Argilla and pull again",
                        {
                            "corrected_reasoning": ballot.corrected_reasoning,
                            "corrected_answer": ballot.corrected_answer,
                        },
                    )
                )
        decision = ReviewDecision(
            sample_id=original.id,
            outcome=outcome,
            ballots=ballots,
            flags=flags,
            correction_id=fix.id if fix else None,
            decided_at=decided_at if outcome != "pending" else None,
        )
        decided[original.id] = (decision, fix)
    written: set[str] = set()
    for sample in accepted:
        if sample.id in written:
            out.counts["duplicates"] += 1  # a sample listed twice in accepted.jsonl is written once
            continue
        written.add(sample.id)
        if sample.id not in decided:
            out.counts["not_pushed"] += 1
            continue
        decision, fix = decided[sample.id]
        out.decisions.append(decision)
        out.counts[decision.outcome] += 1
        for flag in decision.flags:
            out.counts[f"flag_{flag}"] += 1
        if decision.outcome == "pending":
            continue
        change = [b for b in decision.ballots if b.vote in ("reject", "correct")]
        flag_reasons = {f if f == "invalid_correction" else f"review_{f}" for f in decision.flags}
        reasons = sorted({r for b in change for r in b.reasons} | flag_reasons)
        out.verdicts.append(
            Verdict(
                sample_id=sample.id,
                stage="review",
                outcome=decision.outcome,
                reasons=[] if decision.outcome == "accepted" else reasons,
                detail=_detail(decision.ballots, decision.flags, policy),
                reviewers=[b.reviewer for b in decision.ballots if b.vote is not None],
                decided_at=decision.decided_at or utc_now(),
            )
        )
        if decision.outcome == "accepted":
            out.reviewed.append(sample)
        elif fix is not None:
            out.reviewed.append(fix)
    return out

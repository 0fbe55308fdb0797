"""Push 100 samples to a real Argilla server, annotate through the UI's REST endpoints, pull, check everything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from review_builders import UIAnnotator, dataset_id_of, write_review_run

from cotforge.pairs.corrections import correction_pairs
from cotforge.review.agreement import krippendorff_alpha
from cotforge.review.ballots import ReviewDecision
from cotforge.review.connection import ArgillaTarget
from cotforge.review.pull import ReviewPullConfig, review_status
from cotforge.review.push import ReviewPushConfig
from cotforge.review.server import ReviewServer
from cotforge.review.stage import pull_from_argilla, push_to_argilla
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import PromptRecord, RejectRecord, Sample, Verdict

pytestmark = pytest.mark.integration

FIX_SAME = "I won't explain lock picking; a licensed locksmith can help you get back in."
FIX_ANN, FIX_BOB = "Refusal by ann.", "Refusal by bob."


def expected_label(i: int) -> str:
    return "principled_refusal" if i % 2 == 0 else "helpful"


def plan(i: int) -> tuple[tuple[str, dict | None], tuple[str, dict | None] | None]:
    """What ann and bob do with sample i: (status, values); None = no response (bob only)."""
    ok = {"answer_verdict": expected_label(i), "consistency": "consistent"}
    harmful = {"answer_verdict": "harmful", "consistency": "consistent"}
    if i < 50:  # both accept
        return ("submitted", {**ok, "reasoning_quality": 5 if i >= 25 else 4}), (
            "submitted",
            {**ok, "reasoning_quality": 4},
        )
    if i < 60:  # both reject
        return (
            ("submitted", {**harmful, "reasoning_quality": 2, "consistency": "inconsistent"}),
            ("submitted", {**harmful, "reasoning_quality": 1}),
        )
    if i < 70:  # both write the same corrected answer
        fix = {**harmful, "reasoning_quality": 3, "corrected_answer": FIX_SAME}
        return ("submitted", fix), ("submitted", fix)
    if i < 75:  # different corrections: bob's (the later one) wins, flagged
        return (
            ("submitted", {**harmful, "reasoning_quality": 3, "corrected_answer": FIX_ANN}),
            ("submitted", {**harmful, "reasoning_quality": 3, "corrected_answer": FIX_BOB}),
        )
    if i < 80:  # accept vs over-refusal: a tie, rejected by the default policy
        return ("submitted", {**ok, "reasoning_quality": 4}), (
            "submitted",
            {"answer_verdict": "over_refusal", "consistency": "consistent", "reasoning_quality": 2},
        )
    if i < 85:  # ann discards, bob accepts: a tie, rejected
        return ("discarded", None), ("submitted", {**ok, "reasoning_quality": 4})
    if i < 90:  # ann corrects the reasoning (89: an invalid answer correction), bob accepts: tie → corrected
        fix = {
            **ok,
            "reasoning_quality": 3,
            "corrected_reasoning": f"1. Think about case {i}.\n2. Then decide.",
        }
        if i == 89:
            fix = {**ok, "reasoning_quality": 3, "corrected_answer": "Broken </think> answer"}
        return ("submitted", fix), ("submitted", {**ok, "reasoning_quality": 4})
    if i < 95:  # only ann: below the quorum of 2
        return ("submitted", {**ok, "reasoning_quality": 4}), None
    return ("pending", None), ("draft", {**ok, "reasoning_quality": 4}) if i == 95 else None


def annotate(ann: UIAnnotator, bob: UIAnnotator, dataset_id: str, samples: list[Sample]) -> None:
    """Each annotator works through their own UI queue (pending records, found with the memory search engine)."""
    for who, index in ((ann, 0), (bob, 1)):
        queue = who.pending(dataset_id)
        assert len(queue) == 100  # everything is pending for a new annotator
        for i, sample in enumerate(samples):
            action = plan(i)[index]
            if action is None or action[0] == "pending":
                continue
            status, values = action
            if status == "draft":
                who.respond(queue[sample.id], "draft", values)
            else:
                who.respond(queue[sample.id], status, values)


def test_push_annotate_pull_round_trip(
    argilla_env: ReviewServer,
    dataset_name: str,
    make_annotator: Callable[[str, str], UIAnnotator],
    run_dir: Path,
) -> None:
    samples = write_review_run(run_dir, 100)
    target = {"workspace": "roundtrip", "dataset": dataset_name}
    pushed = push_to_argilla(run_dir, ReviewPushConfig(**target, annotators_per_record=2, progress=False))
    assert (pushed.pushed, pushed.created_dataset, pushed.records_in_dataset) == (100, True, 100)

    ann, bob = make_annotator("ann", "roundtrip"), make_annotator("bob", "roundtrip")
    dataset_id = dataset_id_of(argilla_env.url, argilla_env.api_key, "roundtrip", dataset_name)
    annotate(ann, bob, dataset_id, samples)

    # The UI's own views, served by the in-memory engine: ann's queue and metrics, the team's progress.
    assert set(ann.pending(dataset_id)) == {s.id for s in samples[95:]}
    assert ann.metrics(dataset_id) == {
        "total": 100,
        "submitted": 90,
        "discarded": 5,
        "draft": 0,
        "pending": 5,
    }
    status = review_status(run_dir, ArgillaTarget(**target))
    assert (status.total, status.completed, status.pending, status.annotators_per_record) == (100, 85, 15, 2)
    by_user = {a.username: (a.submitted, a.discarded, a.draft) for a in status.annotators}
    assert by_user == {ann.username: (90, 5, 0), bob.username: (90, 0, 1)}

    result = pull_from_argilla(run_dir, ReviewPullConfig(**target, progress=False))
    folder = RunFolder(run_dir)
    decisions = {d.sample_id: d for d in folder.read(RunFiles.REVIEW_DECISIONS, ReviewDecision)}
    outcome = {i: decisions[s.id].outcome for i, s in enumerate(samples)}
    expected = (
        {i: "accepted" for i in range(50)}
        | {i: "rejected" for i in [*range(50, 60), *range(75, 85), 89]}
        | {i: "corrected" for i in [*range(60, 75), *range(85, 89)]}
        | {i: "pending" for i in range(90, 100)}
    )
    assert outcome == expected
    assert (
        result.counts["accepted"] == 50
        and result.counts["corrected"] == 19
        and result.counts["rejected"] == 21
    )
    assert result.counts["pending"] == 10 and result.counts["flag_tie"] == 15
    assert decisions[samples[70].id].flags == ["corrections_differ"]
    assert decisions[samples[77].id].flags == ["disagreement", "tie"]

    # reviewed.jsonl: the 50 accepted originals and 19 corrections; originals of corrections stay in accepted.
    reviewed = folder.read(RunFiles.REVIEWED, Sample)
    assert len(reviewed) == 69
    by_parent = {s.parent_sample_id: s for s in reviewed if s.parent_sample_id}
    assert {s.id for s in reviewed if not s.parent_sample_id} == {s.id for s in samples[:50]}
    assert by_parent[samples[60].id].rationale.answer == FIX_SAME
    assert by_parent[samples[60].id].rationale.reasoning_steps == samples[60].rationale.reasoning_steps
    assert by_parent[samples[72].id].rationale.answer == FIX_BOB
    assert by_parent[samples[72].id].provenance["review_corrected_by"] == bob.username
    assert by_parent[samples[86].id].rationale.reasoning_steps == ["Think about case 86.", "Then decide."]
    assert all(s.revision == 1 for s in by_parent.values())
    assert folder.read(RunFiles.ACCEPTED, Sample) == samples

    verdicts = {v.sample_id: v for v in folder.read(RunFiles.REVIEW_VERDICTS, Verdict)}
    assert len(verdicts) == 90 and all(v.stage == "review" for v in verdicts.values())
    assert verdicts[samples[55].id].reasons == ["answer_harmful", "inconsistent", "low_reasoning_quality"]
    assert verdicts[samples[81].id].reasons == ["discarded", "review_disagreement", "review_tie"]
    assert sorted(verdicts[samples[0].id].reviewers) == sorted([ann.username, bob.username])
    (reject,) = folder.read(RunFiles.REVIEW_REJECTS, RejectRecord)
    assert reject.record_id == samples[89].id and reject.reasons == ["invalid_correction"]

    # Agreement. answer_verdict, hand-computed over the 85 items both submitted: 80 agree (po = 80/85);
    # marginals ann (pr 29, helpful 31, harmful 25), bob (pr 27, helpful 28, harmful 25, over-refusal 5)
    # → pe = 2276/7225 → kappa = (6800 - 2276) / (7225 - 2276) = 4524/4949.
    verdict_agreement = result.agreement["answer_verdict"]
    assert (verdict_agreement.items, verdict_agreement.raters) == (85, 2)
    assert verdict_agreement.cohen_kappa_mean == pytest.approx(4524 / 4949, abs=1e-4)
    assert verdict_agreement.percent_agreement == pytest.approx(80 / 85, abs=1e-4)
    ratings = {}
    for i, s in enumerate(samples):
        a, b = plan(i)
        pair = {
            who: act[1]["reasoning_quality"]
            for who, act in (("a", a), ("b", b))
            if act and act[0] == "submitted"
        }
        ratings[s.id] = pair
    quality = result.agreement["reasoning_quality"]
    assert quality.krippendorff_alpha["interval"] == pytest.approx(
        krippendorff_alpha(ratings, "interval"), abs=1e-4
    )
    manifest = load_manifest(folder, "review")
    assert manifest is not None and manifest.status == "completed"
    assert (
        manifest.extra["agreement"]["answer_verdict"]["cohen_kappa_mean"]
        == verdict_agreement.cohen_kappa_mean
    )

    # The pairs stage finds every correction by parent_sample_id.
    prompts = {p.id: p for p in folder.read(RunFiles.PROMPTS, PromptRecord)}
    pairs, unpaired = correction_pairs({s.id: s for s in samples}, reviewed, verdicts.values(), prompts, 0.2)
    assert len(pairs) == 19 and unpaired == {"no_correction": 21}

    # Pulling again without new responses changes nothing, byte for byte.
    before = {n: folder.path(n).read_bytes() for n in (RunFiles.REVIEWED, RunFiles.REVIEW_VERDICTS)}
    pull_from_argilla(run_dir, ReviewPullConfig(**target, progress=False))
    assert {n: folder.path(n).read_bytes() for n in before} == before

    # The owner's key is in no manifest, run file or server log.
    written = [*run_dir.rglob("*.json*"), *argilla_env.log_dir.glob("*.log")]
    assert written and not any(argilla_env.api_key in p.read_text(errors="replace") for p in written)

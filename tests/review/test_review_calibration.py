"""Judge calibration round trip with the session's real Argilla server; reviewers' labels written via the SDK,
then applied by `pairs --calibration`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "release"))


@pytest.mark.integration
def test_calibration_round_trip_with_argilla(argilla_env, dataset_name: str, tmp_path: Path) -> None:
    import argilla as rg
    from run_factory import BAD, GOOD, JUDGE_ID, MIXED, build_run

    from cotforge.curation.calibration_review import (
        QUESTIONS,
        REPORT_FILE,
        CalibrationConfig,
        CalibrationError,
        push_calibration,
        report_calibration,
    )
    from cotforge.review.connection import ArgillaTarget

    built = build_run(tmp_path / "run", with_metrics=False)
    config = CalibrationConfig(target=ArgillaTarget(dataset=dataset_name), size=50, min_labelled=10)
    name, added = push_calibration(built.root, config)
    ok = [c for c in built.candidates if c.status == "ok"]
    assert name == dataset_name and added == len(ok)
    assert push_calibration(built.root, config)[1] == 0  # a second push adds nothing

    with pytest.raises(CalibrationError, match=r"0 candidate\(s\).*at least 10 are needed"):
        report_calibration(built.root, config)

    client = rg.Argilla(api_url=argilla_env.url, api_key=argilla_env.api_key)
    dataset = client.datasets(name=dataset_name, workspace="cotforge")
    workspace = client.workspaces("cotforge")
    reviewers = []
    for who in ("alice", "bob"):
        user = rg.User(
            username=f"{who}-{dataset_name}", password="calibrate-123", role="annotator", client=client
        )
        user = user.create()
        workspace.add_user(user)
        reviewers.append(user)

    def truth(text: str) -> tuple[str, str]:
        if text == GOOD:
            return "harmless", "harmless"
        return ("harmful", "harmful") if text == BAD else ("harmless", "harmful")  # MIXED

    by_id = {c.id: c for c in ok}
    records = list(dataset.records(with_responses=True))
    for i, record in enumerate(records):
        rs, rp = truth(by_id[str(record.id)].text)
        for j, user in enumerate(reviewers):
            label_rs = rs if not (j == 1 and i < 3) else ("harmful" if rs == "harmless" else "harmless")
            record.responses.add(
                rg.Response(QUESTIONS["reasoning"], label_rs, user_id=user.id, status="submitted")
            )
            record.responses.add(rg.Response(QUESTIONS["answer"], rp, user_id=user.id, status="submitted"))
    dataset.records.log(records)

    report = report_calibration(built.root, config)
    written = json.loads((built.root / REPORT_FILE).read_text())
    assert written["labelled"] == {"reasoning": len(ok) - 3, "answer": len(ok)}  # three reasoning ties
    llm = {a.segment: a for a in report.judges if a.judge == JUDGE_ID}
    assert llm["answer"].kappa.value == 1.0 and llm["answer"].n == len(ok)
    assert llm["reasoning"].accuracy.value == 1.0
    rules = [a for a in report.judges if a.judge == "rule-v1"]
    assert {a.segment for a in rules} == {"reasoning", "answer"}
    assert all(a.kappa.value is None or -1.0 <= a.kappa.value <= 1.0 for a in rules)
    reviewers_answer = report.reviewers["answer"]
    assert reviewers_answer.percent_agreement == 1.0
    assert report.reviewers["reasoning"].percent_agreement == pytest.approx((len(ok) - 3) / len(ok), abs=1e-3)

    # Fitted to people: this judge's line for the whole output is 0.8 (it scores the mixed outputs people call
    # harmful 0.8, the refusals 0.02), and it agrees with them perfectly at its fitted lines.
    fitted = report.calibrations[JUDGE_ID]
    assert fitted.scores["h_f"].threshold.value == pytest.approx(0.8) and fitted.agreement.value == 1.0
    assert written["calibrations"][JUDGE_ID]["scores"]["h_rp"]["threshold"]["value"] == pytest.approx(0.85)

    # Applied, it changes the pairs: on people's scale a refusal vs a mixed output (h_f 0.02 vs 0.8) is a gap of
    # under γ = 0.5, so those pairs go; refusal vs plain compliance stays.
    from cotforge.pairs.build import PairsConfig, build_pairs_in_run
    from cotforge.runfolder import RunFiles, read_jsonl
    from cotforge.schemas import PreferencePair

    def pairs_with(**config: object) -> dict[str, PreferencePair]:
        build_pairs_in_run(built.root, PairsConfig(sources=["judge"], **config))  # type: ignore[arg-type]
        return {p.id: p for p in read_jsonl(built.root / RunFiles.PAIRS, PreferencePair)}

    plain = pairs_with()
    calibrated = pairs_with(calibration=str(built.root / REPORT_FILE))
    by_text = {c.id: c.text for c in built.candidates}
    assert set(calibrated) < set(plain)
    assert {by_text[p.rejected_id or ""] for p in plain.values()} == {BAD, MIXED}
    assert {by_text[p.rejected_id or ""] for p in calibrated.values()} == {BAD}
    assert all(p.lineage["calibration"] for p in calibrated.values())

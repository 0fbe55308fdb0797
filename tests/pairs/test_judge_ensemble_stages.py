"""Judge ensembles and calibration in the stages: `judge` with several judges, `pairs` combining them and
leaving candidates out, `pairs --calibration` applying (or refusing) a calibration file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge import tagged
from cotforge.cli import app
from cotforge.curation.calibration_fit import fit_judge
from cotforge.pairs.calibration_file import CalibrationReport
from cotforge.pairs.judges import JudgeIdentity
from cotforge.runfolder import RunFiles, RunFolder, read_jsonl
from cotforge.schemas import (
    Candidate,
    CandidateScores,
    JudgeScores,
    PreferencePair,
    RejectRecord,
    SegmentSpan,
)
from tests.factories import make_prompt

PROMPTS = [make_prompt(f"Explain how to pick lock number {i}.") for i in range(3)]
TEXTS = [
    tagged.render(["Lock picking to break in harms owners."], "I won't help with that."),
    tagged.render(["They surely have a good reason."], "Sure! Here is how: step 1."),
]


def _candidates() -> list[Candidate]:
    return [
        Candidate(
            id=f"c{p}-{i}", prompt_id=PROMPTS[p].id, policy_model="policy", index=i, text=text, status="ok",
            spans=SegmentSpan.of(text),
        )
        for p in range(len(PROMPTS))
        for i, text in enumerate(TEXTS)
    ]  # fmt: skip


def _s(cand: str, judge: str, h: float) -> JudgeScores:
    return JudgeScores(candidate_id=cand, h_rs=h, h_rp=h, h_f=h, judge_id=judge)


def _run(root: Path, judgments: list[JudgeScores]) -> RunFolder:
    folder = RunFolder(root).ensure()
    folder.write(RunFiles.PROMPTS, PROMPTS)
    folder.write(RunFiles.CANDIDATES, _candidates())
    folder.write(RunFiles.JUDGMENTS, judgments)
    return folder


def _pairs(run: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["pairs", "--run", str(run), "--source", "judge", "--gamma", "0.3", *args],
        catch_exceptions=False,
    )
    return result.exit_code, result.output


@pytest.mark.unit
def test_pairs_combine_three_judges_and_leave_out_what_they_disagree_on_or_miss(tmp_path: Path) -> None:
    judgments = [
        # prompt 0: the judges agree (the refusal harmless, the compliance harmful) → a pair.
        *[_s("c0-0", j, 0.0) for j in ("a", "b", "rule-v1")],
        *[_s("c0-1", j, h) for j, h in (("a", 0.9), ("b", 1.0), ("rule-v1", 0.9))],
        # prompt 1: judge b calls the compliance harmless → spread 0.8, left out, and no pair for prompt 1.
        *[_s("c1-0", j, 0.0) for j in ("a", "b", "rule-v1")],
        *[_s("c1-1", j, h) for j, h in (("a", 0.9), ("b", 0.1), ("rule-v1", 0.9))],
        # prompt 2: judge b failed on the compliance → left out for the missing judge.
        *[_s("c2-0", j, 0.0) for j in ("a", "b", "rule-v1")],
        *[_s("c2-1", j, 0.9) for j in ("a", "rule-v1")],
    ]
    run = tmp_path / "run"
    folder = _run(run, judgments)
    code, output = _pairs(run, "--max-disagreement", "0.5")
    assert code == 0, output
    pairs = folder.read(RunFiles.PAIRS, PreferencePair)
    assert [(p.chosen_id, p.rejected_id) for p in pairs] == [("c0-0", "c0-1")]
    assert pairs[0].rejected_scores is not None
    assert pairs[0].rejected_scores.judge_id == "ensemble:mean(a,b,rule-v1)"
    assert pairs[0].rejected_scores.h_f == pytest.approx((0.9 + 1.0 + 0.9) / 3)
    rejects = {r.record_id: r for r in read_jsonl(folder.path(RunFiles.PAIRS_REJECTS), RejectRecord)}
    assert rejects["c1-1"].reasons == ["judges_disagree_h_rs", "judges_disagree_h_rp", "judges_disagree_h_f"]
    assert rejects["c2-1"].reasons == ["judge_missing"]
    assert "max_disagreement 0.5" in rejects["c1-1"].message
    scores = {s.candidate_id: s for s in read_jsonl(folder.path(RunFiles.PAIRS_SCORES), CandidateScores)}
    assert len(scores) == 6 and scores["c1-1"].disagreement == pytest.approx(0.8)
    assert set(scores["c0-1"].per_judge) == {"a", "b", "rule-v1"}
    manifest = json.loads(folder.manifest_path("pairs").read_text())
    ensemble = manifest["extra"]["ensemble"]
    assert ensemble["dropped"] == {
        "judges_disagree_h_rs": 1, "judges_disagree_h_rp": 1, "judges_disagree_h_f": 1, "judge_missing": 1,
    }  # fmt: skip
    assert ensemble["dropped_candidates"] == 2 and manifest["counts"]["candidates_left_out_by_judges"] == 2
    assert "left out: judge_missing" in output

    # Without the margin the same judgments keep every candidate both judges scored: prompt 1 gets its pair.
    code, _ = _pairs(run)
    assert code == 0
    assert len(folder.read(RunFiles.PAIRS, PreferencePair)) == 2


def _calibration(
    path: Path,
    judge: str,
    identity: JudgeIdentity | None,
    seed_scores: dict[str, float],
    truth: dict[str, bool] | None = None,
) -> Path:
    # By default people call everything this judge scores 0.3 or more harmful (its scale is compressed).
    truth = truth if truth is not None else {c: s >= 0.3 for c, s in seed_scores.items()}
    labels = {"h_rs": truth, "h_rp": truth, "h_f": truth}
    fitted = fit_judge({f: seed_scores for f in labels}, labels, identity, resamples=200)
    report = CalibrationReport(
        threshold=0.5, labelled={}, judges=[], reviewers={}, calibrations={judge: fitted}, run="elsewhere"
    )
    path.write_text(report.model_dump_json())
    return path


LABELLED = {f"x{i}": round(0.02 * i, 2) for i in range(21)}  # 0.00 … 0.40; harmful from 0.30


@pytest.mark.unit
def test_a_calibration_changes_the_pairs_and_is_recorded(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # One judge on a compressed scale: its "harmful" is 0.35, under the default line and the gap γ = 0.3 … 0.5.
    judgments = [_s(f"c{p}-0", "j", 0.0) for p in range(3)] + [_s(f"c{p}-1", "j", 0.35) for p in range(3)]
    folder = _run(run, judgments)
    code, _ = _pairs(run, "--gamma", "0.4")
    assert code == 0 and folder.read(RunFiles.PAIRS, PreferencePair) == []  # gap 0.35 ≤ γ
    calibration = _calibration(tmp_path / "calibration.json", "j", None, LABELLED)
    code, output = _pairs(run, "--gamma", "0.4", "--calibration", str(calibration))
    assert code == 0, output
    pairs = folder.read(RunFiles.PAIRS, PreferencePair)
    assert len(pairs) == 3  # on the calibrated scale 0.35 is above people's line: a gap of ~0.54
    assert all(p.rejected_scores is not None and p.rejected_scores.h_f > 0.5 for p in pairs)
    manifest = json.loads(folder.manifest_path("pairs").read_text())
    recorded = manifest["extra"]["calibration"]
    assert recorded["judges"]["j"]["thresholds"]["h_f"] == pytest.approx(0.3)
    assert all(p.lineage["calibration"] == recorded["sha256"] for p in pairs)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other_judge", "has no entry for judge j (it calibrates: k)"),
        ("other_rubric", "made for another judge j (rubric_hash 'aaaa' here, 'bbbb' there)"),
        ("low_agreement", "under min_agreement 0.99"),
        ("few_labels", "no fitted threshold for h_rs (3 labelled candidate(s); at least 10 are needed)"),
        ("not_json", "not JSON"),
        ("wrong_shape", "it is not a `judge-calibrate report` output"),
        ("old_format", "has no fitted thresholds (written by an older cotforge)"),
        ("missing", "No such file"),
    ],
)
def test_a_calibration_that_does_not_fit_the_run_is_refused_by_name(
    tmp_path: Path, case: str, message: str
) -> None:
    run = tmp_path / "run"
    folder = _run(run, [_s(f"c{p}-{i}", "j", 0.9 * i) for p in range(3) for i in range(2)])
    identity = JudgeIdentity(kind="llm", model="m", prompts="judge", rubric_hash="aaaa")
    manifest = folder.manifest_path("judge")
    manifest.parent.mkdir(exist_ok=True)
    # What the judge stage records: the judges' identities in its manifest.
    from cotforge.runfolder.manifest import StageRun

    with StageRun(folder, "judge", {}) as stage:
        stage.extra["judges"] = {"j": identity.model_dump(exclude_none=True)}
    path = tmp_path / "calibration.json"
    extra: list[str] = []
    if case == "other_judge":
        _calibration(path, "k", None, LABELLED)
    elif case == "other_rubric":
        _calibration(path, "j", identity.model_copy(update={"rubric_hash": "bbbb"}), LABELLED)
    elif case == "low_agreement":
        # The judge's score follows people's label only loosely: a 1 in 3 chance of a wrong side.
        scores = {f"x{i}": (i % 10) / 10 for i in range(30)}
        truth = {c: (s >= 0.5) != (i % 3 == 0) for i, (c, s) in enumerate(scores.items())}
        _calibration(path, "j", identity, scores, truth)
        extra = ["--min-agreement", "0.99"]
    elif case == "few_labels":
        _calibration(path, "j", identity, {"x0": 0.0, "x1": 0.3, "x2": 0.4})
    elif case == "not_json":
        path.write_text("{not json")
    elif case == "wrong_shape":
        path.write_text(json.dumps({"thresholds": [0.5]}))
    elif case == "old_format":
        path.write_text(json.dumps({"threshold": 0.5, "labelled": {}, "judges": [], "reviewers": {}}))
    code, output = _pairs(run, "--calibration", str(path), *extra)
    assert code == 1, output
    assert message in " ".join(output.split()), output
    if case == "low_agreement":
        assert "labelled decisions" in output and ("more candidates" in output or "would not lift" in output)
    assert not folder.exists(RunFiles.PAIRS)  # nothing was built on a refused calibration


@pytest.mark.unit
def test_judge_config_names_each_judge_once_and_fills_the_model_of_an_entry_without_one() -> None:
    from cotforge.pairs.judges import JudgeConfig, LLMJudge

    runner = CliRunner()
    alone = runner.invoke(app, ["judge", "--run", "x", "--set", "models=[rules, {prompts: judge/checklist}]"])
    assert alone.exit_code != 0 and "no `judge` model to default to" in " ".join(alone.output.split())
    twice = runner.invoke(app, ["judge", "--run", "x", "--set", "models=[rules, rules]"])
    assert twice.exit_code != 0 and "names the judge rule-v1 more than once" in " ".join(twice.output.split())
    # A pipeline step's `server:` is the `judge` model: entries without their own `llm` ask it.
    config = JudgeConfig.model_validate(
        {"judge": {"model": "smollm2"}, "models": ["rules", {}, {"prompts": "judge/checklist"}]}
    )
    judges = config.judges()
    assert [j if j == "rules" else j.judge_id for j in judges] == [
        "rules", "llm:smollm2", "llm:smollm2:judge/checklist",
    ]  # fmt: skip
    assert all(j.model.model == "smollm2" for j in judges if isinstance(j, LLMJudge))


@pytest.mark.integration
def test_an_ensemble_on_the_tiny_server_and_one_more_judge_costs_only_its_own_calls(
    tmp_path: Path, tiny_vllm_server: object
) -> None:
    from cotforge.llm.config import LLMConfig
    from cotforge.llm.pricing import read_ledger
    from cotforge.pairs.judges import LLMJudge
    from cotforge.pairs.judging import JudgeConfig, judge_in_run

    run = tmp_path / "run"
    folder = _run(run, [])
    folder.path(RunFiles.JUDGMENTS).unlink()
    llm = LLMConfig(model="tiny", base_urls=[tiny_vllm_server.base_url], concurrency=8)  # type: ignore[attr-defined]
    first = JudgeConfig(models=["rules", LLMJudge(llm=llm)], progress=False)
    result = judge_in_run(run, first)
    split = len(_candidates())
    assert result.judges == {"rule-v1": split, "llm:tiny": split} and result.judged == split
    assert set(result.agreement_between_judges) == {"rule-v1|llm:tiny"}
    ledger = read_ledger(folder.path(RunFiles.USAGE))
    assert len(ledger) == 3 * split  # three rubric questions per candidate, the rule judge costs nothing

    second = JudgeConfig(models=[*first.models, LLMJudge(llm=llm, prompts="judge/checklist")], progress=False)
    result = judge_in_run(run, second)
    assert result.judges["llm:tiny:judge/checklist"] == split
    manifest = json.loads(folder.manifest_path("judge").read_text())
    assert manifest["usage"]["requests"] == 3 * split  # only the new judge's questions were sent
    assert len(read_ledger(folder.path(RunFiles.USAGE))) == 6 * split
    assert manifest["extra"]["judges"]["llm:tiny:judge/checklist"]["prompts"] == "judge/checklist"
    rubric = {i["rubric_hash"] for i in manifest["extra"]["judges"].values() if i["kind"] == "llm"}
    assert len(rubric) == 2  # the two prompt sets are two judges
    lines = list(read_jsonl(folder.path(RunFiles.JUDGMENTS), JudgeScores))
    assert len(lines) == 3 * split and len({(s.judge_id, s.candidate_id) for s in lines}) == 3 * split

    # Taking a judge out leaves no score of it behind for `pairs` to combine.
    judge_in_run(run, first)
    assert {s.judge_id for s in read_jsonl(folder.path(RunFiles.JUDGMENTS), JudgeScores)} == {
        "rule-v1",
        "llm:tiny",
    }
    code, output = _pairs(run, "--max-disagreement", "0.6")
    assert code == 0, output
    scores = list(read_jsonl(folder.path(RunFiles.PAIRS_SCORES), CandidateScores))
    assert len(scores) == split and all(set(s.per_judge) == {"rule-v1", "llm:tiny"} for s in scores)


@pytest.mark.unit
def test_the_report_and_the_release_card_show_the_ensemble_and_the_calibration(tmp_path: Path) -> None:
    from cotforge.release.card import build_card
    from cotforge.release.provenance import run_provenance
    from cotforge.release.run_contents import read_run_contents
    from cotforge.report.build import build_report

    run = tmp_path / "run"
    judgments = [
        _s(f"c{p}-{i}", j, h) for p in range(3) for i, h in enumerate((0.0, 0.35)) for j in ("j", "k")
    ]
    judgments[-1] = _s("c2-1", "k", 0.95)  # judge k calls this one far more harmful than judge j
    _run(run, judgments)
    calibration = _calibration(tmp_path / "calibration.json", "j", None, LABELLED)
    report = CalibrationReport.model_validate_json(calibration.read_text())
    both = report.model_copy(
        update={"calibrations": {"j": report.calibrations["j"], "k": report.calibrations["j"]}}
    )
    calibration.write_text(both.model_dump_json())
    code, output = _pairs(run, "--calibration", str(calibration), "--max-disagreement", "0.3")
    assert code == 0, output
    html = Path(build_report(run).html).read_text()
    assert "judge ensemble (mean of j, k)" in html and "judges_disagree_h_f" in html
    assert "candidates left out of the pairs: 1 of 6" in html and "judge calibration applied" in html
    provenance = run_provenance(read_run_contents(run))
    assert provenance.calibration is not None and provenance.calibration["file"] == "calibration.json"
    card = str(build_card([], provenance, created_at="2026-12-07"))
    assert f"sha256 `{provenance.calibration['sha256']}`" in card and "`j` h_rs 0.3" in card

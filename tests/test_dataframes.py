"""pandas views: a run-folder JSONL file (`RunFolder.frame`) and the eval results (`results_frame`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotforge.errors import CotforgeError
from cotforge.evaluation import results_frame
from cotforge.evaluation.summary import EVAL_COLUMNS
from cotforge.evaluation.summary import results_frame as eval_results_frame
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import JudgeScores, PromptRecord

pytestmark = pytest.mark.unit


def _prompt(text: str) -> PromptRecord:
    return PromptRecord(
        id=PromptRecord.make_id(text, "safety"),
        text=text,
        kind="safety",
        category="violent_crimes",
        source="test",
        licence="MIT",
    )


def test_run_file_frame_has_one_row_per_record_and_flat_nested_columns(run_dir: Path) -> None:
    folder = RunFolder(run_dir)
    prompts = [_prompt("first\u2028still the first prompt"), _prompt("second")]
    folder.write(RunFiles.PROMPTS, prompts)
    frame = folder.frame(RunFiles.PROMPTS)
    assert list(frame["id"]) == [p.id for p in prompts]
    assert list(frame["text"]) == [p.text for p in prompts]  # U+2028 did not split a record
    assert frame["parent_id"].isna().all()

    scores = [
        JudgeScores(candidate_id=f"c{i}", h_rs=0.1 * i, h_rp=0.2, h_f=max(0.1 * i, 0.2), judge_id="rule-v1")
        for i in range(3)
    ]
    folder.write(RunFiles.JUDGMENTS, scores)
    judged = folder.frame(RunFiles.JUDGMENTS)
    assert len(judged) == 3
    assert judged["h_f"].tolist() == pytest.approx([0.2, 0.2, 0.2])
    assert judged.groupby("judge_id")["h_rs"].mean().loc["rule-v1"] == pytest.approx(0.1)


def test_nested_objects_become_dotted_columns(run_dir: Path) -> None:
    folder = RunFolder(run_dir)
    rows = [
        {"id": f"s{i}", "usage": {"prompt_tokens": i, "completion_tokens": 2 * i},
         "rationale": {"reasoning_steps": ["a", "b"][: i + 1], "answer": f"answer {i}"}}
        for i in range(2)
    ]  # fmt: skip
    folder.write(RunFiles.SAMPLES, rows)
    frame = folder.frame(RunFiles.SAMPLES)
    assert {"usage.prompt_tokens", "usage.completion_tokens", "rationale.answer"} <= set(frame.columns)
    assert frame["usage.completion_tokens"].sum() == 2
    assert frame["rationale.reasoning_steps"].tolist() == [["a"], ["a", "b"]]  # lists stay lists


def test_frame_errors_name_the_file_and_line(run_dir: Path) -> None:
    folder = RunFolder(run_dir)
    with pytest.raises(CotforgeError, match=r"prompts\.jsonl: not found"):
        folder.frame(RunFiles.PROMPTS)
    folder.path(RunFiles.PROMPTS).write_text('{"id": "a"}\n\n{"id": \n', encoding="utf-8")
    with pytest.raises(CotforgeError, match=r"prompts\.jsonl:3: not valid JSON"):
        folder.frame(RunFiles.PROMPTS)
    folder.path(RunFiles.PROMPTS).write_text("", encoding="utf-8")
    assert folder.frame(RunFiles.PROMPTS).empty


def test_eval_results_frame_is_long_with_an_overall_row_per_model(run_dir: Path) -> None:
    results = {
        "base": {
            "model": "tiny",
            "attack_success_rate": 0.5,
            "over_refusal_rate": 0.25,
            "per_tactic": {
                "harmful/direct": {"n": 4, "attack_success_rate": 0.5, "unsplit": 1},
                "benign/direct": {"n": 4, "over_refusal_rate": 0.25},
            },
        },
        "awdpo": {
            "model": "tiny-awdpo",
            "attack_success_rate": 0.0,
            "over_refusal_rate": 0.5,
            "per_tactic": {"jailbreak/roleplay": {"n": 2, "attack_success_rate": 0.0}},
        },
    }
    (run_dir / "eval").mkdir()
    (run_dir / "eval" / "results.json").write_text(json.dumps(results), encoding="utf-8")
    frame = results_frame(run_dir)
    assert list(frame.columns) == EVAL_COLUMNS
    assert len(frame) == 5
    overall = frame[frame["set"] == "all"].set_index("label")
    assert overall.loc["base", "n"] == 8 and overall.loc["base", "unsplit"] == 1
    assert overall.loc["awdpo", "attack_success_rate"] == 0.0
    roleplay = frame[(frame["label"] == "awdpo") & (frame["tactic"] == "roleplay")]
    assert roleplay["set"].tolist() == ["jailbreak"] and roleplay["model"].tolist() == ["tiny-awdpo"]
    pivot = frame[frame["set"] != "all"].pivot_table(
        index="tactic", columns="label", values="attack_success_rate", aggfunc="first"
    )
    assert pivot.loc["direct", "base"] == 0.5


def test_eval_results_frame_without_eval_says_what_to_run(run_dir: Path) -> None:
    with pytest.raises(CotforgeError, match="cotforge eval"):
        eval_results_frame(run_dir)

"""A run folder that checks itself: every stage reads a file only while the manifest that wrote it vouches for
it (content, run, finished), and says which file, what changed and the command that rebuilds it otherwise."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cotforge.pairs.build import PAIRS, PairsConfig
from cotforge.runfolder import RunFiles, RunFolder, read_jsonl
from cotforge.runfolder.identity import load_manifest, read_run_id
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import JudgeScores
from tests.pipeline.conftest import build_finished_run
from tests.runfolder.conftest import cli, refused

pytestmark = pytest.mark.unit


def _manifest(run: Path, stage: str) -> dict:  # type: ignore[type-arg]
    return json.loads((run / "manifests" / f"{stage}.json").read_text())


def _rescore(run: Path, h_f: float) -> None:
    """Edit the first judgment's whole-output score (a hand edit of judgments.jsonl)."""
    path = run / RunFiles.JUDGMENTS
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["h_f"] = h_f
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")


def test_a_copy_taken_while_pairs_ran_is_refused_until_rebuilt(finished: Path) -> None:
    # What a copy taken mid-`pairs` holds: its manifest says running, a temp file was left, judgments changed.
    StageRun.declared(RunFolder(finished), PAIRS, PairsConfig()).__enter__()
    (finished / ".pairs.jsonl.k2j4.tmp").write_text('{"id": "pair-')
    line = refused(cli("release", "build", "--run", finished), "pairs.jsonl is unfinished", "running since")
    assert f"Finish it with `cotforge pairs --run {finished}`" in line and ".pairs.jsonl.k2j4.tmp" in line
    _rescore(finished, 0.01)
    line = refused(cli("release", "build", "--run", finished), "judgments.jsonl changed since it was written")
    assert "(also: pairs.jsonl, pairs.rejects.jsonl)" in line
    assert not (finished / "release").exists()
    before = (finished / RunFiles.PAIRS).read_bytes()
    refused(cli("pairs", "--run", finished), "judgments.jsonl changed since it was written", "cotforge judge")
    assert (finished / RunFiles.PAIRS).read_bytes() == before

    # The edit was intended: accepted, recorded in judge's manifest, and read from then on.
    assert cli("pairs", "--run", finished, "--accept-changed", "judgments.jsonl").exit_code == 0
    (accepted,) = _manifest(finished, "judge")["accepted_changes"]
    assert accepted["file"] == RunFiles.JUDGMENTS and accepted["problem"] == "changed"
    assert accepted["accepted_by"] == "pairs" and _manifest(finished, "pairs")["status"] == "completed"
    assert cli("pairs", "--run", finished).exit_code == 0
    assert cli("release", "build", "--run", finished).exit_code == 0


def test_judgments_from_another_run_are_refused(finished: Path, tmp_path: Path) -> None:
    smaller = (finished / RunFiles.JUDGMENTS).read_text().splitlines(keepends=True)[:3]
    saved = (finished / RunFiles.JUDGMENTS).read_bytes()
    (finished / RunFiles.JUDGMENTS).write_text("".join(smaller))
    refused(
        cli("pairs", "--run", finished), "judgments.jsonl changed", "holds 3 records where 8 were written"
    )

    # The file and its manifest both from another run: the manifest names that run.
    other = tmp_path / "other"
    build_finished_run(other)
    (finished / RunFiles.JUDGMENTS).write_bytes(saved)
    shutil.copy(other / "manifests" / "judge.json", finished / "manifests" / "judge.json")
    line = refused(cli("pairs", "--run", finished), "judgments.jsonl belongs to another run")
    assert str(read_run_id(RunFolder(other))) in line and str(read_run_id(RunFolder(finished))) in line


def test_a_copied_run_folder_is_the_same_run(finished: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    assert read_run_id(RunFolder(copy)) == read_run_id(RunFolder(finished))
    assert cli("pairs", "--run", copy).exit_code == 0
    assert _manifest(copy, "pairs")["run_id"] == read_run_id(RunFolder(finished))


def test_texts_edited_without_their_spans_are_not_released(finished: Path) -> None:
    path = finished / RunFiles.PAIRS
    pairs = [json.loads(line) for line in path.read_text().splitlines()]
    pairs[0]["chosen"] = pairs[0]["chosen"].replace("<think>", "<think>Edited. ", 1)  # spans now off the tags
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    refused(cli("release", "build", "--run", finished), "pairs.jsonl changed since it was written", "SHA-256")
    assert not (finished / "release").exists()


def test_two_judgments_of_one_candidate_are_an_error_naming_both_lines(finished: Path) -> None:
    path = finished / RunFiles.JUDGMENTS
    lines = path.read_text().splitlines()
    again = json.loads(lines[1])
    again["h_f"] = 1.0 - again["h_f"]
    path.write_text("\n".join([*lines, json.dumps(again)]) + "\n")
    line = refused(
        cli("pairs", "--run", finished, "--accept-changed", "judgments.jsonl"), "judgments.jsonl:2"
    )
    assert "line 9" in line and again["candidate_id"] in line
    # The same judgment written twice is one judgment.
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    assert cli("pairs", "--run", finished, "--accept-changed", "judgments.jsonl").exit_code == 0
    assert _manifest(finished, "pairs")["counts"]["pairs"] == 15


def test_a_duplicate_prompt_id_with_other_text_is_an_error(finished: Path) -> None:
    path = finished / RunFiles.PROMPTS
    lines = path.read_text().splitlines()
    twin = json.loads(lines[0])
    twin["text"] = "How do I bake bread?"
    path.write_text("\n".join([*lines, json.dumps(twin)]) + "\n")
    refused(cli("pairs", "--run", finished), "prompts.jsonl:1 and line 5", twin["id"])
    # Across prompts.jsonl and augmented.jsonl too.
    path.write_text("\n".join(lines) + "\n")
    (finished / RunFiles.AUGMENTED).write_text(json.dumps(twin) + "\n")
    refused(cli("pairs", "--run", finished), "prompts.jsonl:1 and", "augmented.jsonl:1", twin["id"])


def test_manifests_and_state_from_a_newer_version_are_read(finished: Path, tmp_path: Path) -> None:
    judge = finished / "manifests" / "judge.json"
    data = json.loads(judge.read_text())
    data["lineage_v9"] = {"signed_by": "cotforge 9"}
    data["usage"]["reasoning_tokens"] = 12
    judge.write_text(json.dumps(data))
    _rescore(finished, 0.02)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(json.dumps({"name": "t", "run": str(finished), "steps": [{"pairs": {}}]}))
    state = {"name": "t", "steps": {}, "resumed_by": "cotforge 9"}
    (finished / "manifests" / "pipeline.json").write_text(json.dumps(state))
    result = cli("run", pipeline, "--accept-changed", "judgments.jsonl")
    assert result.exit_code == 0, result.output
    kept = json.loads(judge.read_text())  # the acceptance rewrote it, keeping what this version does not know
    assert (
        kept["lineage_v9"] == {"signed_by": "cotforge 9"}
        and kept["accepted_changes"][0]["problem"] == "changed"
    )
    assert json.loads((finished / "manifests" / "pipeline.json").read_text())["resumed_by"] == "cotforge 9"


def test_half_copied_manifest_and_unknown_accept_name_are_named(finished: Path) -> None:
    judge = finished / "manifests" / "judge.json"
    judge.write_bytes(judge.read_bytes()[:200])
    refused(
        cli("pairs", "--run", finished),
        "manifests/judge.json: not a readable stage manifest",
        "cotforge judge",
    )
    refused(cli("pairs", "--run", finished, "--accept-changed", "bogus.jsonl"), "not an input of `pairs`")
    # Another tool's JSON in manifests/ is left alone.
    judge.write_text('{"dashboard": true}')
    assert cli("pairs", "--run", finished).exit_code == 0


def test_an_old_run_folder_without_the_new_fields_still_resumes(finished: Path) -> None:
    for path in (finished / "manifests").glob("*.json"):
        data = json.loads(path.read_text())
        for key in ("run_id", "rows", "unfinished", "accepted_changes"):
            data.pop(key, None)
        path.write_text(json.dumps(data))
    (finished / "manifests" / "run.json").unlink()
    # An interrupted stage in an old folder wrote no outputs into its manifest: nothing to refuse.
    judge = json.loads((finished / "manifests" / "judge.json").read_text())
    (finished / "manifests" / "judge.json").write_text(
        json.dumps({**judge, "status": "running", "outputs": {}})
    )
    assert cli("pairs", "--run", finished).exit_code == 0
    assert read_run_id(RunFolder(finished)) == _manifest(finished, "pairs")["run_id"]
    # Its completed manifests still vouch by hash.
    (finished / RunFiles.ACCEPTED).write_text((finished / RunFiles.ACCEPTED).read_text() + "\n\n")
    refused(cli("pairs", "--run", finished), "accepted.jsonl changed")


REFUSED = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
LLM_JUDGE = ("--model", "m", "--base-url", REFUSED, "--set", "judge.max_retries=0", "--no-crosscheck")


def test_a_stage_resumes_its_own_unfinished_output_but_not_a_changed_finished_one(finished: Path) -> None:
    from cotforge.llm.config import LLMConfig
    from cotforge.pairs.judging import JUDGE, JudgeConfig

    path = finished / RunFiles.JUDGMENTS
    by_rule = path.read_text()
    # A judge's scores are its own: the run's rule judgments as the LLM judge "m" would have written them.
    lines = [
        s.model_copy(update={"judge_id": "llm:m"}).model_dump_json() + "\n"
        for s in read_jsonl(path, JudgeScores)
    ]
    # An LLM judge killed mid-run: its manifest says running and the file holds part of the judgments.
    llm = LLMConfig(model="m", base_urls=[REFUSED])
    StageRun.declared(RunFolder(finished), JUDGE, JudgeConfig(judge=llm)).__enter__()
    path.write_text("".join(lines[:5]))
    refused(
        cli("pairs", "--run", finished), "judgments.jsonl is unfinished", "Finish it with `cotforge judge"
    )
    # The judge itself resumes: it keeps the five and asks for the other three (which fail here: exit 3).
    result = cli("judge", "--run", finished, *LLM_JUDGE)
    assert result.exit_code == 3 and "completed with 3 failures" in result.output, result.output
    assert path.read_text() == "".join(lines[:5])
    assert cli("judge", "--run", finished, *LLM_JUDGE, "--set", "allow_failures=true").exit_code == 0
    # A finished file edited by hand: the LLM judge would append to it, so it is refused.
    path.write_text("".join(lines[:4]))
    refused(cli("judge", "--run", finished, *LLM_JUDGE), "judgments.jsonl changed", "Delete it and run")
    # The rule judge rewrites the whole file: it rebuilds it.
    assert cli("judge", "--run", finished).exit_code == 0
    assert path.read_text() == by_rule


def test_a_failed_stage_marks_what_it_changed_unfinished_and_keeps_what_it_did_not(finished: Path) -> None:
    folder = RunFolder(finished)
    vouched = load_manifest(folder, "pairs")
    assert vouched is not None
    with pytest.raises(RuntimeError), StageRun.declared(folder, PAIRS, PairsConfig()):
        (finished / RunFiles.PAIRS).write_text("")  # one output rewritten, then a crash
        raise RuntimeError("disk on fire")
    manifest = load_manifest(folder, "pairs")
    assert manifest is not None and manifest.status == "failed" and manifest.unfinished == [RunFiles.PAIRS]
    assert manifest.outputs[RunFiles.PAIRS_TRL] == vouched.outputs[RunFiles.PAIRS_TRL]
    refused(cli("release", "build", "--run", finished), "pairs.jsonl is unfinished", "disk on fire")
    # A second failure that changes nothing leaves it unfinished all the same.
    with pytest.raises(RuntimeError), StageRun.declared(folder, PAIRS, PairsConfig()):
        raise RuntimeError("still on fire")
    again = load_manifest(folder, "pairs")
    assert again is not None and again.unfinished == [RunFiles.PAIRS]
    assert again.outputs[RunFiles.PAIRS_TRL] == vouched.outputs[RunFiles.PAIRS_TRL]


def _swap_in(run: Path, name: str, kind: str) -> None:
    path = run / name
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()


@pytest.mark.parametrize(
    ("name", "kind", "said"),
    [
        (RunFiles.AUGMENTED, "fifo", "is a FIFO"),  # optional: opening it would wait forever
        (RunFiles.REVIEWED, "device", "is a device"),  # a symlink to /dev/zero: reading it would never end
        (RunFiles.JUDGMENTS, "folder", "is a folder, but a file is expected"),
    ],
)
def test_an_input_that_is_not_a_regular_file_is_refused_before_it_is_opened(
    finished: Path, name: str, kind: str, said: str
) -> None:
    _swap_in(finished, name, kind)
    refused(cli("pairs", "--run", finished), f"{name} {said}", "move it away")


def test_the_pipeline_rebuilds_an_edited_output_unless_told_to_keep_it(
    finished: Path, tmp_path: Path
) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        json.dumps({"name": "t", "run": str(finished), "steps": [{"judge": {}}, {"pairs": {}}]})
    )
    assert cli("run", pipeline).exit_code == 0
    original = (finished / RunFiles.JUDGMENTS).read_text()
    _rescore(finished, 0.01)
    result = cli("run", pipeline)
    assert result.exit_code == 0 and "judgments.jsonl changed since the step completed" in result.output
    assert (finished / RunFiles.JUDGMENTS).read_text() == original  # rebuilt by the rule judge, and said so
    _rescore(finished, 0.01)
    edited = (finished / RunFiles.JUDGMENTS).read_text()
    result = cli("run", pipeline, "--accept-changed", "judgments.jsonl")
    assert result.exit_code == 0, result.output
    assert "[judge] unchanged" in result.output and "[pairs] running" in result.output
    assert (finished / RunFiles.JUDGMENTS).read_text() == edited
    (accepted,) = _manifest(finished, "judge")["accepted_changes"]
    assert accepted["accepted_by"] == "cotforge run t" and accepted["problem"] == "changed"
    assert "[pairs] unchanged" in cli("run", pipeline).output  # kept from then on, with no flag


def test_a_folder_input_is_checked_file_by_file_less_its_own_bookkeeping(finished: Path) -> None:
    from cotforge.runfolder.integrity import RunFileChangedError, verify_inputs

    assert cli("release", "build", "--run", finished).exit_code == 0
    folder = RunFolder(finished)
    # What `release push` records inside the release folder is not release content.
    (finished / "release" / "manifests").mkdir()
    (finished / "release" / "manifests" / "release-push.json").write_text("{}")
    verify_inputs(folder, "report", [RunFiles.RELEASE])
    (finished / "release" / "extra.txt").write_text("dropped in by hand")
    with pytest.raises(
        RunFileChangedError, match=r"release changed since it was written: added: release/extra.txt"
    ):
        verify_inputs(folder, "report", [RunFiles.RELEASE])
    verify_inputs(folder, "report", [RunFiles.RELEASE], accept=[RunFiles.RELEASE])
    verify_inputs(folder, "report", [RunFiles.RELEASE])  # accepted from then on

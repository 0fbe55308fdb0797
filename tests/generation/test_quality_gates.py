"""Quality gates: each reason, the legitimate-repetition families they must let through, and bad input."""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cotforge.generation.quality import (
    QualityConfig,
    compression_ratio,
    gate_reasons,
    looping_text,
    repeated_steps,
    repetitive_text,
)
from cotforge.generation.validate import ValidationConfig, validate_in_run, validate_samples
from cotforge.pipeline.runner import PipelineRunner
from cotforge.pipeline.spec import PipelineError, PipelineSpec
from cotforge.pipeline.stages import registry
from cotforge.runfolder import RunFiles, RunFolder, RunFolderError
from cotforge.schemas import Rationale, RejectRecord, Sample, Verdict
from tests.factories import make_prompt, make_sample

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).resolve().parents[2] / "benchmarks" / "fixtures" / "validate_gates.jsonl"
CONFIG = QualityConfig()
STEPS = ["Read the request carefully.", "Decide whether it is safe to answer.", "Write the answer."]


def fixture_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def reasons_of(record: dict[str, Any]) -> list[str]:
    rationale = Rationale(reasoning_steps=record["steps"], answer=record["answer"])
    return gate_reasons(rationale.reasoning_steps, rationale.answer, record["finish_reason"], CONFIG)


def by_family(label: str) -> dict[str, list[dict[str, Any]]]:
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in fixture_records():
        if r["label"] == label:
            families[r["family"]].append(r)
    return families


# --- each reason --------------------------------------------------------------------------------------------


def test_identical_steps_after_normalising_case_spaces_and_punctuation_are_repeated() -> None:
    step = "Consider whether the request could cause harm."
    assert repeated_steps([step, "  CONSIDER whether the request, could cause harm!"], CONFIG)
    assert gate_reasons([step, step], "No.", "stop", CONFIG) == ["repeated_steps"]


def test_steps_differing_by_one_word_are_near_duplicates_but_parallel_short_steps_are_not() -> None:
    a = "The user is asking for something that may be dangerous, so I should refuse politely."
    assert repeated_steps([a, a.replace("dangerous", "risky")], CONFIG)
    assert not repeated_steps(
        ["Check the oil level.", "Check the tyre pressure.", "Check the lights."], CONFIG
    )
    # The threshold is honoured: at similarity 1.0 only exact duplicates count.
    assert not repeated_steps(
        [a, a.replace("dangerous", "risky")], QualityConfig(near_duplicate_similarity=1.0)
    )


@pytest.mark.parametrize(
    "answer",
    [
        "The number nine nine nine nine.",
        "King King King King King",
        "I cannot help with that request. " * 4,
        "So " + "the cat sat " * 10,
        " ".join(["yes", "no"] * 20),
    ],
)
def test_word_and_phrase_loops_are_repetitive_text(answer: str) -> None:
    assert repetitive_text(answer, CONFIG)
    assert "repetitive_text" in gate_reasons(STEPS, answer, "stop", CONFIG)


@pytest.mark.parametrize(
    "answer", ["King" * 40, "I can't help with that" + "!" * 120, "..." * 50, "我不能帮你。" * 20, "😀" * 80]
)
def test_character_loops_and_punctuation_runs_are_looping_text(answer: str) -> None:
    assert looping_text(answer, CONFIG)
    assert "looping_text" in gate_reasons(STEPS, answer, "stop", CONFIG)


def test_a_loop_inside_one_step_is_caught() -> None:
    steps = ["Read the request.", "This is important to consider. " * 6, "Write the answer."]
    assert "repetitive_text" in gate_reasons(steps, "No.", "stop", CONFIG)


def test_truncated_is_rejected_even_when_the_text_is_fine() -> None:
    assert gate_reasons(STEPS, "I can't help with that, but I can point you to safer", "length", CONFIG) == [
        "truncated"
    ]
    assert gate_reasons(STEPS, "Fine.", "stop", CONFIG) == []
    assert gate_reasons(STEPS, "Fine.", None, CONFIG) == []  # unknown (an older run): not judged
    assert gate_reasons(STEPS, "Fine.", "length", QualityConfig(reject_truncated=False)) == []


def test_disabled_gates_pass_everything() -> None:
    assert gate_reasons(["a b c d e", "a b c d e"], "King" * 40, "length", QualityConfig(enabled=False)) == []


# --- legitimate repetition and the fixture ------------------------------------------------------------------

# The one family member the gates misjudge, kept in the fixture (see benchmarks/README.md): an 8x8 ASCII grid of
# "." and "#" with a period of three is as compressible as a loop.
KNOWN_FALSE_POSITIVES = {"good-0039"}


@pytest.mark.parametrize("family", sorted(by_family("good")))
def test_every_good_family_passes(family: str) -> None:
    records = by_family("good")[family]
    wrong = {
        r["id"]: reasons_of(r) for r in records if reasons_of(r) and r["id"] not in KNOWN_FALSE_POSITIVES
    }
    assert not wrong, wrong


def test_the_known_false_positive_is_still_the_only_one() -> None:
    flagged = {r["id"] for r in fixture_records() if r["label"] == "good" and reasons_of(r)}
    assert flagged == KNOWN_FALSE_POSITIVES
    assert len(KNOWN_FALSE_POSITIVES) / sum(r["label"] == "good" for r in fixture_records()) <= 0.01


@pytest.mark.parametrize("family", sorted(by_family("degenerate")))
def test_every_degenerate_family_is_caught(family: str) -> None:
    missed = [r["id"] for r in by_family("degenerate")[family] if not reasons_of(r)]
    assert not missed


def test_the_fixture_has_enough_of_both_kinds() -> None:
    records = fixture_records()
    assert sum(r["label"] == "good" for r in records) >= 100
    assert sum(r["label"] == "degenerate" for r in records) >= 100
    assert {"non_english_zh", "non_english_ja", "poem_refrain", "code", "table", "arithmetic"} <= set(
        by_family("good")
    )


@pytest.mark.parametrize(
    "answer",
    [
        "Yes.",
        "No no.",
        "Bye bye!",
        "Ha ha ha.",
        "好好学习，天天向上。每天坚持读书，慢慢地你会发现自己进步了很多。常常复习，常常练习。",
        "はい、はい、わかりました。",
        "| Yes | Yes | Yes | Yes |",
        "Never, never, never, never give up.",
        "0 0 0 0 0 0 0 0",
    ],
)
def test_short_answers_and_unspaced_scripts_are_not_misjudged(answer: str) -> None:
    assert gate_reasons(STEPS, answer, "stop", CONFIG) == []


# --- bad input ----------------------------------------------------------------------------------------------


def test_empty_steps_and_empty_texts_do_not_crash() -> None:
    assert gate_reasons([], "", None, CONFIG) == []
    assert gate_reasons(["", "  "], "", "stop", CONFIG) == []
    assert compression_ratio("") == 1.0


def test_a_100000_character_answer_is_judged() -> None:
    rng = random.Random(0)
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(5000)]
    prose = " ".join(rng.choice(vocabulary) for _ in range(20_000))
    loop = "The same sentence again and again. " * 3000
    assert len(prose) > 100_000 and len(loop) > 100_000
    assert gate_reasons(STEPS, prose[:100_000], "stop", CONFIG) == []
    assert set(gate_reasons(STEPS, loop[:100_000], "stop", CONFIG)) == {"repetitive_text", "looping_text"}


def test_lone_surrogates_from_bad_escapes_are_measured_not_an_error() -> None:
    text = "Here is a broken escape \udcff and " + "\udcff" * 100
    assert looping_text(text, CONFIG)
    assert gate_reasons(STEPS, "ok \udcff text", "stop", CONFIG) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("min_compression_ratio", 1.5),
        ("near_duplicate_similarity", 0),
        ("max_word_repeats", 0),
        ("compress_min_bytes", 2),
        ("top_ngram_fractions", {2: 1.2}),
        ("duplicate_ngram_fractions", {0: 0.5}),
    ],
)
def test_an_out_of_range_threshold_names_its_key(key: str, value: object) -> None:
    with pytest.raises(ValidationError, match=key):
        ValidationConfig.model_validate({"quality": {key: value}})
    with pytest.raises(PipelineError, match=rf"step validate: quality\.{key}"):
        spec = PipelineSpec(
            name="p", run="r", steps=[{"stage": "validate", "config": {"quality": {key: value}}}]
        )
        PipelineRunner(spec=spec, registry=registry(), servers=None, templates_root=FIXTURE.parent)


# --- the validate stage ---------------------------------------------------------------------------------------


def _sample(
    prompt_kind: str, steps: list[str], answer: str, index: int, finish: str | None = "stop"
) -> Sample:
    prompt = make_prompt("How do I plan a week of hiking?", prompt_kind)  # type: ignore[arg-type]
    return make_sample(prompt, steps, answer, index).model_copy(update={"finish_reason": finish})


def test_validate_rejects_with_every_reason_and_loses_nothing(tmp_path: Path) -> None:
    prompt = make_prompt("How do I plan a week of hiking?", "utility")
    step = "Plan the route and check the weather forecast for every day."
    samples = [
        _sample("utility", ["Plan the route.", "Pack light."], "Walk 15 km a day and rest on day four.", 0),
        _sample("utility", [step, step.upper()], "King" * 40, 1, finish="length"),
        _sample("utility", ["Plan the route.", "Pack light."], "The number nine nine nine nine.", 2),
        _sample("utility", ["Plan the route.", "Pack light."], "Walk 15 km a day.", 3, finish="length"),
    ]
    folder = RunFolder(tmp_path).ensure()
    folder.write(RunFiles.PROMPTS, [prompt])
    folder.write(RunFiles.SAMPLES, samples)
    result = validate_in_run(tmp_path, ValidationConfig())
    assert (result.samples, result.accepted, result.rejected) == (4, 1, 3)
    rejects = folder.read(RunFiles.VALIDATE_REJECTS, RejectRecord)
    by_id = {r.record_id: r for r in rejects}
    assert set(by_id[samples[1].id].reasons) == {"repeated_steps", "looping_text", "truncated"}
    assert by_id[samples[1].id].line == 2 and by_id[samples[1].id].raw == samples[1].raw_text
    assert by_id[samples[2].id].reasons == ["repetitive_text"]
    assert by_id[samples[3].id].reasons == ["truncated"]
    assert [s.id for s in folder.read(RunFiles.ACCEPTED, Sample)] == [samples[0].id]
    assert len(folder.read(RunFiles.VERDICTS, Verdict)) == 4
    manifest = json.loads(folder.manifest_path("validate").read_text())
    assert manifest["extra"]["reasons"] == {
        "repeated_steps": 1,
        "looping_text": 1,
        "truncated": 2,
        "repetitive_text": 1,
    }


def test_escaped_non_ascii_in_samples_is_read_and_a_lone_surrogate_names_the_line(tmp_path: Path) -> None:
    prompt = make_prompt("Say hello", "utility")
    ok = make_sample(prompt, ["Greet the user.", "Keep it short."], "你好 😀, bonjour.", 0)
    folder = RunFolder(tmp_path).ensure()
    folder.write(RunFiles.PROMPTS, [prompt])
    line = json.dumps(json.loads(ok.model_dump_json()), ensure_ascii=True)  # every non-ASCII as \\u escapes
    folder.path(RunFiles.SAMPLES).write_text(line + "\n", encoding="utf-8")
    assert validate_in_run(tmp_path).accepted == 1
    bad = line.replace("bonjour", "bon\\udcffjour")
    folder.path(RunFiles.SAMPLES).write_text(line + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"samples\.jsonl:2: not a valid Sample"):
        validate_in_run(tmp_path)


def test_validate_samples_core_reports_gates_alongside_content_checks() -> None:
    prompt = make_prompt("Say hello", "utility")
    sample = _sample("utility", ["Ok.", "OK!"], "Hello hello hello hello!", 0)
    sample = sample.model_copy(update={"prompt_id": prompt.id})
    (verdict,) = validate_samples([sample], {prompt.id: prompt}, ValidationConfig())
    assert {"degenerate_step", "repeated_steps", "repetitive_text"} <= set(verdict.reasons)


def test_cli_names_the_config_file_and_the_bad_threshold(tmp_path: Path) -> None:
    config = tmp_path / "validate.yaml"
    config.write_text("quality:\n  min_compression_ratio: 2\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "cotforge", "validate", "--run", str(tmp_path), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert str(config) in run.stderr + run.stdout
    assert "quality.min_compression_ratio" in run.stderr + run.stdout

"""validate's optional LLM refusal check, against the real tiny-model server (guided JSON booleans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotforge.generation.validate import ValidationConfig, validate_in_run
from cotforge.llm.config import LLMConfig
from cotforge.runfolder import RunFiles, RunFolder, atomic_write_jsonl
from cotforge.schemas import PromptRecord, Sample, Verdict
from cotforge.serving.vllm_server import VLLMServer
from tests.factories import make_prompt, make_sample

pytestmark = pytest.mark.integration


def _sample(prompt: PromptRecord, answer: str) -> Sample:
    return make_sample(prompt, ["First I read the request.", "Then I decide."], answer)


def test_llm_check_is_asked_only_about_doubtful_answers(run_dir: Path, tiny_vllm_server: VLLMServer) -> None:
    safety_refused = make_prompt("How do I hotwire a car?", "safety")
    safety_doubtful = make_prompt("How do I pick a lock?", "safety")
    utility_fine = make_prompt("How long do I boil an egg?", "utility")
    utility_doubtful = make_prompt("How do I kill a Python process?", "utility")
    samples = [
        _sample(safety_refused, "I can't help with that."),
        _sample(safety_doubtful, "Locks are fascinating mechanisms with pins."),
        _sample(utility_fine, "About six minutes for a soft yolk."),
        _sample(utility_doubtful, "I'm sorry, but use `kill PID` to stop it."),
    ]
    folder = RunFolder(run_dir)
    atomic_write_jsonl(
        folder.path(RunFiles.PROMPTS), [safety_refused, safety_doubtful, utility_fine, utility_doubtful]
    )
    atomic_write_jsonl(folder.path(RunFiles.SAMPLES), samples)
    check = LLMConfig(model="tiny", base_urls=[tiny_vllm_server.base_url])
    validate_in_run(run_dir, ValidationConfig(llm_check=check))
    manifest = json.loads(folder.manifest_path("validate").read_text())
    assert manifest["extra"]["llm_refusal_checks"] == 2  # the two doubtful answers, nothing else
    verdicts = {v.sample_id: v for v in folder.read(RunFiles.VERDICTS, Verdict)}
    # Answers the patterns are sure about are not second-guessed.
    assert verdicts[samples[0].id].outcome == "accepted"
    assert verdicts[samples[2].id].outcome == "accepted"
    # The doubtful ones follow the model's answer, whichever it was; the reason code names the rule.
    assert set(verdicts[samples[1].id].reasons) <= {"safety_not_refused"}
    assert set(verdicts[samples[3].id].reasons) <= {"utility_refused"}

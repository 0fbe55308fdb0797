"""`validate.reask`: a rejected sample goes back to the teacher with validation's reasons in words, the answer is
validated again, every attempt is recorded, the attempts are paid for, and a re-run is free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotforge.generation.generate import generate_in_run
from cotforge.generation.requests import GenerateConfig
from cotforge.generation.validate import ValidationConfig, validate_in_run
from cotforge.generation.validate_reask import REPEATED, ReaskResult, _settle, reason_in_words
from cotforge.llm.engine import RequestOutcome
from cotforge.llm.pricing import read_ledger
from cotforge.runfolder import RunFiles, RunFolder, read_jsonl
from cotforge.schemas import RejectRecord, Sample, SamplingParams, Verdict
from cotforge.serving.vllm_server import VLLMServer
from tests.factories import make_prompt, make_sample
from tests.generation.conftest import tiny_generation
from tests.llm.fault_proxy import FaultProxy


@pytest.mark.unit
def test_reasons_in_words_and_a_looped_answer_is_not_asked_again() -> None:
    words = reason_in_words(["repeated_steps", "utility_refused", "safety_not_refused", "looping_text"])
    assert "two of the reasoning steps say the same thing" in words
    assert "refuses a harmless request" in words and "helps with a harmful request" in words
    assert "loops" in words
    assert reason_in_words(["some_new_code"]) == "some new code"  # an unknown code is still said

    prompt = make_prompt("How long should I boil an egg?", "utility")
    original = make_sample(prompt, ["Eggs eggs eggs.", "Eggs eggs eggs."], "Eggs.")
    from cotforge.generation.requests import plan_samples
    from cotforge.llm.config import LLMConfig
    from cotforge.templates import default_templates

    generate = GenerateConfig(teacher=LLMConfig(model="teacher", base_urls=["http://127.0.0.1:1/v1"]))
    plan = plan_samples([prompt], generate, default_templates())[0]
    # The teacher answers the re-ask with the very text it was told was wrong.
    looped = RequestOutcome(plan.request, original.rationale, original.raw_text, SamplingParams(), attempts=1)
    result = ReaskResult()
    again = _settle(
        1,
        {original.id: (original, original, ["repeated_steps"])},
        {original.id: looped},
        {original.id: plan},
        generate,
        lambda _s, _p: [],
        result,
    )
    assert again == {} and result.accepted == []
    assert result.rejects[0].reasons == [REPEATED, "repeated_steps"]
    assert result.rejects[0].raw["reask_of"] == original.id and result.attempts[0]["reasons"] == {REPEATED: 1}


@pytest.mark.integration
def test_reask_on_the_tiny_server_accepts_some_records_every_attempt_and_a_rerun_is_free(
    few_prompts_run: Path, tiny_vllm_server: VLLMServer
) -> None:
    run = few_prompts_run
    folder = RunFolder(run)
    with FaultProxy(tiny_vllm_server.base_url) as proxy:
        raw = tiny_generation(
            [proxy.base_url], samples_per_prompt=4, kinds=["utility"], teacher={"concurrency": 8}
        )
        generate_in_run(run, GenerateConfig.model_validate(raw))
        generated = len(proxy.bodies)
        # Three steps asked where the teacher may give two or three: about half fail `too_few_steps`, and a
        # re-ask (another seed, the reason in words) has the same even chance of three.
        config = ValidationConfig(
            min_steps=3, refusal_consistency=False, quality={"enabled": False}, reask=3, progress=False
        )
        result = validate_in_run(run, config)
        reasks = proxy.bodies[generated:]
    samples = folder.read(RunFiles.SAMPLES, Sample)
    verdicts = folder.read(RunFiles.VERDICTS, Verdict)
    first = {v.sample_id: v for v in verdicts if v.sample_id in {s.id for s in samples}}
    rejected = [s for s in samples if first[s.id].outcome == "rejected"]
    assert rejected and result.reasked == len(rejected)
    # Each re-ask is the sample's own conversation, its rejected reply, and the reason in words.
    assert reasks and all(len(b["messages"]) == 4 for b in reasks)
    assert all(b["messages"][2]["role"] == "assistant" for b in reasks)
    # The first round answers each rejected sample's own reply with its own reasons, in words.
    first_round = {b["messages"][2]["content"]: b["messages"][3]["content"] for b in reasks}
    for s in rejected:
        assert reason_in_words(first[s.id].reasons) in first_round[s.raw_text]
    assert any("the reasoning has too few steps" in said for said in first_round.values())

    accepted = folder.read(RunFiles.ACCEPTED, Sample)
    fixed = [s for s in accepted if "reask_of" in s.provenance]
    assert result.reask_accepted == len(fixed) > 0
    assert all(len(s.rationale.reasoning_steps) >= 3 for s in accepted)
    assert all(s.provenance["reask_reasons"] and s.provenance["reask_of"] in first for s in fixed)
    rejects = list(read_jsonl(folder.path(RunFiles.VALIDATE_REJECTS), RejectRecord))
    attempts = [r for r in rejects if r.part == "reask"]
    manifest = json.loads(folder.manifest_path("validate").read_text())
    rounds = manifest["extra"]["reask"]["attempts"]
    assert sum(r["asked"] for r in rounds) == len(reasks) == len(attempts) + len(fixed)
    assert all(r.raw["reask_of"] in {s.id for s in rejected} for r in attempts)
    # Paid for: one ledger line per re-ask the server answered, under the validate stage, counted in the manifest.
    ledger = [row for row in read_ledger(folder.path(RunFiles.USAGE)) if row["stage"] == "validate"]
    assert len(ledger) == len(reasks) == manifest["usage"]["requests"]
    assert manifest["usage"]["completion_tokens"] == sum(row["completion_tokens"] for row in ledger) > 0

    # A re-run is served from the cache: the same outcome, nothing sent, nothing paid.
    again = validate_in_run(run, config)
    assert again.reask_accepted == result.reask_accepted and again.accepted == result.accepted
    rerun = json.loads(folder.manifest_path("validate").read_text())
    assert rerun["usage"]["requests"] == 0 and rerun["usage"]["cached_requests"] == len(reasks)
    assert len([r for r in read_ledger(folder.path(RunFiles.USAGE)) if r["stage"] == "validate"]) == len(
        ledger
    )

    # A teacher that cannot be reached: the re-asks fail in transport, the stage says so (exit 3 in the CLI) and
    # keeps every rejected sample with the reason; nothing is accepted on the strength of a failed call.
    from cotforge.errors import FailedRecordsError
    from cotforge.llm.config import LLMConfig

    dead = LLMConfig(model="tiny", base_urls=["http://127.0.0.1:9/v1"], max_retries=0)
    with pytest.raises(FailedRecordsError, match="validate: completed with"):
        validate_in_run(run, config.model_copy(update={"teacher": dead, "use_cache": False}))
    failed = [
        r for r in read_jsonl(folder.path(RunFiles.VALIDATE_REJECTS), RejectRecord) if r.part == "reask"
    ]
    assert failed and all(r.reasons == ["request_failed"] for r in failed)
    assert len(folder.read(RunFiles.ACCEPTED, Sample)) == result.accepted - result.reask_accepted


@pytest.mark.unit
def test_reask_without_a_generate_manifest_says_what_to_do(run_dir: Path) -> None:
    from cotforge.errors import ConfigError

    folder = RunFolder(run_dir)
    prompt = make_prompt("How long should I boil an egg?", "utility")
    folder.write(RunFiles.PROMPTS, [prompt])
    folder.write(RunFiles.SAMPLES, [make_sample(prompt, ["One step only here."], "Ten minutes.")])
    with pytest.raises(ConfigError, match="reask needs the config that generated the samples"):
        validate_in_run(run_dir, ValidationConfig(reask=1, progress=False))

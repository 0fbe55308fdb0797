"""Quality gates on policy candidates: recorded at `sample`, never the chosen side of a pair, counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cotforge import tagged
from cotforge.llm.backends import ChatResponse
from cotforge.llm.cache import RequestCache
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestEngine, RequestOutcome
from cotforge.pairs.build import PairsConfig, build_pairs_in_run
from cotforge.pairs.sampling import SampleConfig, candidate_of, sample_in_run, sample_requests
from cotforge.pairs.selection import flag_gated_rejections, select_judge_pairs
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import Candidate, JudgeScores, PreferencePair, PromptRecord, SegmentSpan, TokenUsage
from cotforge.serving.vllm_server import VLLMServer
from tests.factories import make_prompt

PROMPT = make_prompt("How do I get into a locked car?")
GOOD_REASONING = "The user may be locked out of their own car.\nSuggest calling a locksmith or roadside help."
GOOD_ANSWER = "Call a licensed locksmith or your roadside assistance service."
LOOP_ANSWER = "King" * 60


def cand(
    index: int, answer: str = GOOD_ANSWER, gates: list[str] | None = None, p: PromptRecord = PROMPT
) -> Candidate:
    text = tagged.render([GOOD_REASONING.replace("\n", " ")], answer)
    return Candidate(
        id=f"c-{p.id}-{index}",
        prompt_id=p.id,
        policy_model="m",
        index=index,
        text=text,
        status="ok",
        spans=SegmentSpan.of(text),
        gate_reasons=gates or [],
    )


def score(c: Candidate, h_f: float) -> JudgeScores:
    return JudgeScores(candidate_id=c.id, h_rs=h_f, h_rp=h_f, h_f=h_f, judge_id="j")


def _outcome(config: SampleConfig, text: str, finish_reason: str | None) -> RequestOutcome[str]:
    request = sample_requests([PROMPT], config)[0]
    outcome: RequestOutcome[str] = RequestOutcome(request, text, text, request.sampling, TokenUsage())
    outcome.finish_reason = finish_reason
    return outcome


CONFIG = SampleConfig(policy=LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"]), k=1)


# --- sample: gates recorded on the candidate ----------------------------------------------------------------


@pytest.mark.unit
def test_candidate_records_finish_reason_and_gate_reasons() -> None:
    fine = candidate_of(
        PROMPT, 0, CONFIG, _outcome(CONFIG, f"<think>\n{GOOD_REASONING}\n</think>\n\n{GOOD_ANSWER}", "stop")
    )
    assert fine.finish_reason == "stop" and fine.gate_reasons == []
    looping = candidate_of(
        PROMPT, 0, CONFIG, _outcome(CONFIG, f"<think>\n{GOOD_REASONING}\n</think>\n\n{LOOP_ANSWER}", "stop")
    )
    assert looping.gate_reasons == ["looping_text"]
    repeated = "Think about whether this is safe for everyone involved.\n" * 3
    looped = candidate_of(
        PROMPT, 0, CONFIG, _outcome(CONFIG, f"<think>\n{repeated}</think>\n\n{GOOD_ANSWER}", "length")
    )
    assert looped.gate_reasons == ["repeated_steps", "truncated"]
    unsplit = candidate_of(PROMPT, 0, CONFIG, _outcome(CONFIG, "<think>\nstill thinking", "length"))
    assert unsplit.status == "no_think_close" and unsplit.gate_reasons == ["truncated"]
    off = CONFIG.model_copy(update={"gates": CONFIG.gates.model_copy(update={"enabled": False})})
    assert candidate_of(PROMPT, 0, off, _outcome(off, f"<think>\nx y z\n</think>\n\n{LOOP_ANSWER}", "length")).gate_reasons == []  # fmt: skip


class _ReplayBackend:
    """Answers every request with one fixed completion that stopped at the token limit."""

    name = "replay"

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    async def check_fits(self, request: ChatRequest) -> None:
        return None

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        return ChatResponse(self.text, TokenUsage(prompt_tokens=5, completion_tokens=4), "length", "replay")

    async def aclose(self) -> None:
        return None


@pytest.mark.unit
def test_finish_reason_reaches_the_outcome_from_the_server_and_from_the_cache(tmp_path: Path) -> None:
    backend = _ReplayBackend(f"<think>\n{GOOD_REASONING}\n</think>\n\n{GOOD_ANSWER}")
    requests = sample_requests([PROMPT], CONFIG.model_copy(update={"k": 2}))
    seen: list[RequestOutcome[str]] = []
    for _ in range(2):  # first from the backend, then every request from the cache
        cache = RequestCache(tmp_path / "cache.sqlite")
        engine = RequestEngine(CONFIG.policy, cache, backend=backend, progress=False)
        engine.run(requests, lambda _r, text: text, seen.append)
        cache.close()
    assert backend.calls == 2 and [o.cached for o in seen] == [False, False, True, True]
    assert [o.finish_reason for o in seen] == ["length"] * 4
    assert all(candidate_of(PROMPT, 0, CONFIG, o).gate_reasons == ["truncated"] for o in seen)


# --- pairs: never chosen, may be rejected (flagged) --------------------------------------------------------


@pytest.mark.unit
def test_a_gated_candidate_is_never_chosen_even_when_judged_least_harmful() -> None:
    gated, ok, harmful = cand(0, LOOP_ANSWER, ["looping_text"]), cand(1), cand(2)
    scores = {gated.id: score(gated, 0.0), ok.id: score(ok, 0.1), harmful.id: score(harmful, 0.9)}
    pairs, report = select_judge_pairs({PROMPT.id: PROMPT}, [gated, ok, harmful], scores, 0.5, 0.2)
    assert [(p.chosen_id, p.rejected_id) for p in pairs] == [(ok.id, harmful.id)]
    assert report.skipped["candidate_failed_gates"] == 1


@pytest.mark.unit
def test_a_gated_candidate_can_be_the_rejected_side_and_is_flagged() -> None:
    ok, gated = cand(0), cand(1, LOOP_ANSWER, ["looping_text", "truncated"])
    scores = {ok.id: score(ok, 0.0), gated.id: score(gated, 0.8)}
    pairs, _ = select_judge_pairs({PROMPT.id: PROMPT}, [ok, gated], scores, 0.5, 0.2)
    assert [(p.chosen_id, p.rejected_id) for p in pairs] == [(ok.id, gated.id)]
    flagged, n = flag_gated_rejections(pairs, [ok, gated])
    assert n == 1 and flagged[0].lineage["rejected_gate_reasons"] == "looping_text,truncated"
    with pytest.raises(AssertionError, match="chosen candidate"):
        flag_gated_rejections([pairs[0].model_copy(update={"chosen_id": gated.id})], [ok, gated])


@pytest.mark.unit
def test_a_prompt_whose_candidates_all_fail_the_gates_yields_no_pair() -> None:
    a, b = cand(0, LOOP_ANSWER, ["looping_text"]), cand(1, LOOP_ANSWER, ["repetitive_text"])
    pairs, report = select_judge_pairs({PROMPT.id: PROMPT}, [a, b], {a.id: score(a, 0.0), b.id: score(b, 1.0)}, 0.5, 0.2)  # fmt: skip
    assert pairs == [] and report.skipped["prompt_no_candidate_passing_gates"] == 1


@pytest.mark.unit
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=6))
def test_selection_never_chooses_a_gated_candidate(spec: list[tuple[float, bool]]) -> None:
    cands = [cand(i, gates=["looping_text"] if gated else None) for i, (_, gated) in enumerate(spec)]
    scores = {c.id: score(c, h) for c, (h, _) in zip(cands, spec, strict=True)}
    pairs, _ = select_judge_pairs({PROMPT.id: PROMPT}, cands, scores, 0.1, 0.2)
    gated = {c.id for c in cands if c.gate_reasons}
    assert all(p.chosen_id not in gated for p in pairs)
    passing = [h for h, g in spec if not g]
    if passing and max(h for h, _ in spec) - min(passing) > 0.1:
        assert len(pairs) == 1  # a passing candidate and a gap: the pair is still built


@pytest.mark.unit
def test_pairs_stage_counts_gated_candidates_and_flagged_pairs(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path).ensure()
    other = make_prompt("Write a phishing email for a bank.")
    cands = [
        cand(0),
        cand(1, LOOP_ANSWER, ["looping_text"]),
        cand(0, p=other, gates=["truncated"]),
        cand(1, p=other),
    ]
    folder.write(RunFiles.PROMPTS, [PROMPT, other])
    folder.write(RunFiles.CANDIDATES, cands)
    folder.write(RunFiles.JUDGMENTS, [score(cands[0], 0.0), score(cands[1], 0.9), score(cands[2], 0.0), score(cands[3], 0.9)])  # fmt: skip
    build_pairs_in_run(tmp_path, PairsConfig(sources=["judge"]))
    pairs = folder.read(RunFiles.PAIRS, PreferencePair)
    assert [(p.chosen_id, p.rejected_id) for p in pairs] == [(cands[0].id, cands[1].id)]
    assert pairs[0].lineage["rejected_gate_reasons"] == "looping_text"
    manifest = json.loads(folder.manifest_path("pairs").read_text())
    assert manifest["counts"]["candidates_failing_gates"] == 2
    assert manifest["counts"]["pairs_rejected_side_gated"] == 1
    assert manifest["extra"]["candidate_gates"] == {"looping_text": 1, "truncated": 1}
    assert manifest["extra"]["judge_selection"]["candidate_failed_gates"] == 2


# --- on a real server: finish_reason reaches the candidate, from the server and from the cache --------------


@pytest.mark.integration
def test_sample_stage_marks_length_stops_truncated_and_counts_them(
    run_dir: Path, tiny_vllm_server: VLLMServer
) -> None:
    folder = RunFolder(run_dir)
    folder.write(RunFiles.PROMPTS, [PROMPT])
    policy = LLMConfig.model_validate({"model": "tiny", "base_urls": [tiny_vllm_server.base_url],
                                       "sampling": {"temperature": 1.0, "max_tokens": 4}})  # fmt: skip
    config = SampleConfig(policy=policy, k=3, progress=False)
    result = sample_in_run(run_dir, config)
    first = folder.read(RunFiles.CANDIDATES, Candidate)
    assert len(first) == 3 and all(c.finish_reason == "length" for c in first)
    assert all("truncated" in c.gate_reasons for c in first)
    assert result.gates["truncated"] == 3
    manifest = json.loads(folder.manifest_path("sample").read_text())
    assert manifest["counts"]["gated"] == 3 and manifest["counts"]["gate_truncated"] == 3
    # Served again from the request cache: the finish reason comes back with the text.
    folder.path(RunFiles.CANDIDATES).unlink()
    again = sample_in_run(run_dir, config)
    assert (
        again.sampled == 3
        and json.loads(folder.manifest_path("sample").read_text())["usage"]["cached_requests"] == 3
    )
    assert [c.finish_reason for c in folder.read(RunFiles.CANDIDATES, Candidate)] == ["length"] * 3

"""`sample`: k candidates per prompt from a policy model, each split at ``</think>`` into reasoning and answer.

An output with no ``</think>``, several, or an empty side is kept with that status (its own failure class for
the statistics), never dropped. ``think_format: constrained`` makes a vLLM policy decode inside the
``<think>…</think>`` + answer shape (a regex under structured outputs) — useful for small base models that
never close the tag; it shapes the output, so it is off by default and recorded in the manifest.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from itertools import zip_longest
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge import tagged
from cotforge.generation.quality import QualityConfig, gate_reasons
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestOutcome, run_folder_engine
from cotforge.llm.spend import StageSpend
from cotforge.runfolder import AppendLog, RunFiles, RunFolder, read_jsonl
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.failures import (
    RetryPolicy,
    is_failed_request,
    next_attempt,
    take_failed_requests,
    take_retryable_rejects,
)
from cotforge.runfolder.manifest import StageRun
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import (
    Candidate,
    CandidateStatus,
    Kind,
    PromptRecord,
    RejectRecord,
    SegmentSpan,
    content_id,
)

SAFETY_ONLY: tuple[Kind, ...] = ("safety",)
THINK_REGEX = r"<think>\n[^<]{1,600}\n</think>\n\n[^<]{1,600}"


class SampleConfig(RetryPolicy):
    """The policy model and how many candidates to draw per prompt."""

    model_config = ConfigDict(extra="forbid")

    policy: LLMConfig
    k: int = Field(default=4, ge=1, description="Candidates per prompt.")
    kinds: list[Kind] = Field(default_factory=lambda: list(SAFETY_ONLY))
    include_prompts: bool = Field(default=True, description="Sample for prompts.jsonl.")
    include_augmented: bool = Field(default=True, description="Sample for augmented.jsonl variants.")
    limit: int | None = Field(default=None, ge=1, description="First N prompts only.")
    system: str | None = Field(default=None, description="System prompt the policy sees (none by default).")
    think_format: Literal["free", "constrained"] = "free"
    gates: QualityConfig = Field(
        default_factory=QualityConfig,
        description="Quality gates; a candidate failing them is never the chosen side of a pair.",
    )
    use_cache: bool = True
    refresh: bool = False
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )


def split_candidate(text: str) -> tuple[CandidateStatus, SegmentSpan | None]:
    """The candidate's status and, when it splits cleanly, its spans."""
    try:
        split = tagged.split_segments(text)
    except tagged.TaggedFormatError as exc:
        return exc.code, None  # type: ignore[return-value]
    reasoning = text[: split.reasoning_end].replace(tagged.THINK_OPEN, "").replace(tagged.THINK_CLOSE, "")
    if not reasoning.strip():
        return "empty_reasoning", None
    if not text[split.answer_start :].strip():
        return "empty_answer", None
    return "ok", SegmentSpan(
        reasoning_start=split.reasoning_start,
        reasoning_end=split.reasoning_end,
        answer_start=split.answer_start,
        answer_end=split.answer_end,
    )


def candidate_gate_reasons(
    reasoning: str, answer: str, finish_reason: str | None, config: QualityConfig
) -> list[str]:
    """The quality gates on a candidate: its reasoning's non-empty lines (tags dropped) are the steps."""
    reasoning = reasoning.replace(tagged.THINK_OPEN, "\n").replace(tagged.THINK_CLOSE, "\n")
    lines = [tagged.normalise_step(line) for line in reasoning.splitlines()]
    steps = [line for line in lines if line]
    return gate_reasons(steps, answer, finish_reason, config)


def candidate_id(prompt_id: str, policy_model: str, index: int) -> str:
    return content_id("c", prompt_id, policy_model, str(index))


def sample_requests(prompts: list[PromptRecord], config: SampleConfig) -> list[ChatRequest]:
    """k requests per prompt, keyed by candidate id, each with its own seed."""
    requests: list[ChatRequest] = []
    regex = THINK_REGEX if config.think_format == "constrained" else None
    base = config.policy.sampling
    for prompt in prompts:
        messages = ([{"role": "system", "content": config.system}] if config.system else []) + [
            {"role": "user", "content": prompt.text}
        ]
        for index in range(config.k):
            key = candidate_id(prompt.id, config.policy.model, index)
            seed = (
                (base.seed + index)
                if base.seed is not None
                else int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
            )
            requests.append(ChatRequest(key, messages, base.model_copy(update={"seed": seed}), regex=regex))
    return requests


def candidate_of(
    prompt: PromptRecord, index: int, config: SampleConfig, outcome: RequestOutcome[str]
) -> Candidate:
    """The candidate record of one completed request."""
    assert outcome.value is not None
    status, spans = split_candidate(outcome.value)
    gates: list[str] = []
    if spans is not None:
        reasoning = outcome.value[spans.reasoning_start : spans.reasoning_end]
        answer = outcome.value[spans.answer_start : spans.answer_end]
        gates = candidate_gate_reasons(reasoning, answer, outcome.finish_reason, config.gates)
    elif config.gates.enabled and config.gates.reject_truncated and outcome.finish_reason == "length":
        gates = ["truncated"]
    return Candidate(
        id=outcome.request.key,
        prompt_id=prompt.id,
        policy_model=config.policy.model,
        index=index,
        text=outcome.value,
        status=status,
        spans=spans,
        tactic=prompt.tactic,
        usage=outcome.usage,
        finish_reason=outcome.finish_reason,
        gate_reasons=gates,
    )


SAMPLE = StageDeclaration(
    name="sample",
    config="cotforge.pairs.sampling:SampleConfig",
    edge="cotforge.pairs.sampling:sample_in_run",
    conditional_inputs=lambda config: (
        (RunFiles.PROMPTS,) if config.include_prompts else (RunFiles.AUGMENTED,)
    ),
    optional_inputs=(RunFiles.AUGMENTED,),
    outputs=(RunFiles.CANDIDATES, RunFiles.SAMPLE_REJECTS),
    resumes=(RunFiles.CANDIDATES, RunFiles.SAMPLE_REJECTS),
    main_model_key="policy",
    calls_models=True,
)


class SampleResult(BaseModel):
    prompts: int
    planned: int
    already_done: int
    sampled: int
    failed: int
    by_status: dict[str, int]
    gates: dict[str, int] = {}


def _policy_prompts(folder: RunFolder, config: SampleConfig) -> list[PromptRecord]:
    read = read_run_prompts(folder, originals=config.include_prompts, augmented=config.include_augmented)
    originals = [p for p in read if p.parent_id is None]
    variants = [p for p in read if p.parent_id is not None]
    # Alternate originals and variants so a `limit` keeps both (and a spread of tactics).
    mixed = [p for group in zip_longest(originals, variants) for p in group if p is not None]
    prompts = [p for p in mixed if p.kind in config.kinds]
    return prompts[: config.limit] if config.limit is not None else prompts


def sample_in_run(run_dir: str | Path, config: SampleConfig) -> SampleResult:
    """Append every missing candidate to ``candidates.jsonl`` (failed requests to ``sample.rejects.jsonl``)."""
    folder = SAMPLE.open_run(run_dir, config)
    with StageRun.declared(folder, SAMPLE, config) as run:
        prompts = _policy_prompts(folder, config)
        requests = sample_requests(prompts, config)
        slot = {r.key: (prompts[i // config.k], i % config.k) for i, r in enumerate(requests)}
        cand_path, rej_path = folder.path(RunFiles.CANDIDATES), folder.path(RunFiles.SAMPLE_REJECTS)
        AppendLog(cand_path).close()
        take_failed_requests(rej_path, "sample")  # failed requests are asked again
        retried = (
            {r.record_id: next_attempt(r) for r in take_retryable_rejects(rej_path, "sample")}
            if config.retry_failed
            else {}
        )
        done = [c for c in read_jsonl(cand_path, Candidate)]
        done_ids = {c.id for c in done} | {r.record_id for r in read_jsonl(rej_path, RejectRecord)}
        todo = [r for r in requests if r.key not in done_ids]
        statuses: dict[str, int] = {}
        gates: Counter[str] = Counter()
        gated: set[str] = set()
        for c in done:
            statuses[c.status] = statuses.get(c.status, 0) + 1
            gates.update(c.gate_reasons)
            gated.update([c.id] if c.gate_reasons else [])
        counts = {"sampled": 0, "failed": 0}
        with (
            run_folder_engine(folder, config.policy, "sample", config) as engine,
            AppendLog(cand_path) as log,
            AppendLog(rej_path) as rejects,
        ):
            # A re-asked slot continues with the attempts after those it had (the cache holds their answers).
            todo = [
                replace(r, sampling=engine.sampling_for(r, retried[r.key])) if retried.get(r.key) else r
                for r in todo
            ]

            def store(outcome: RequestOutcome[str]) -> None:
                prompt, index = slot[outcome.request.key]
                if outcome.value is None:
                    counts["failed"] += 1
                    run.failed += int(is_failed_request([outcome.reason or ""]))
                    rejects.append(
                        RejectRecord(
                            stage="sample",
                            source=RunFiles.PROMPTS,
                            record_id=outcome.request.key,
                            reasons=[outcome.reason or "failed"],
                            message=f"prompt {prompt.id} candidate {index}: {outcome.error}",
                            raw={"prompt_id": prompt.id, "outputs": outcome.failed_texts},
                        )
                    )
                    rejects.flush(durable=False)
                    return
                cand = candidate_of(prompt, index, config, outcome)
                statuses[cand.status] = statuses.get(cand.status, 0) + 1
                gates.update(cand.gate_reasons)
                gated.update([cand.id] if cand.gate_reasons else [])
                counts["sampled"] += 1
                log.append(cand)
                log.flush(durable=False)

            stats = engine.run(todo, lambda _r, text: text, store)
        spend = StageSpend()
        summary = spend.add(stats, config.policy)
        spend.record(run)
        run.extra.update(usage=summary, by_status=statuses, gates=dict(gates))
        run.counts.update(prompts=len(prompts), planned=len(requests), **counts)
        run.failed_file = RunFiles.SAMPLE_REJECTS
        run.counts.update(gated=len(gated), **{f"gate_{reason}": n for reason, n in gates.items()})
    return SampleResult(
        prompts=len(prompts),
        planned=len(requests),
        already_done=len(requests) - len(todo),
        sampled=counts["sampled"],
        failed=counts["failed"],
        by_status=statuses,
        gates=dict(gates),
    )

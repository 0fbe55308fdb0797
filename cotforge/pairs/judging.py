"""`judge`: harmfulness of each candidate's reasoning (h_rs), answer (h_rp) and whole output (h_f).

The LLM judge asks three structured questions per candidate (rubrics in ``prompts/judge/``, a 0–10 score
under guided JSON, scaled to [0, 1]). The rule judge (`rule_judge.py`) scores the same candidates offline; it is
the primary judge when no model is configured and a cross-check otherwise, with agreement reported (Cohen's κ
on harmful/harmless at the threshold, exact agreement, mean absolute difference).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.llm.cache import open_cache
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestEngine, RequestOutcome, usage_summary
from cotforge.pairs.rule_judge import RULE_JUDGE_ID, rule_judge
from cotforge.review.agreement import cohen_kappa
from cotforge.runfolder import AppendLog, RunFiles, RunFolder, atomic_write_jsonl, read_jsonl
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
from cotforge.schemas import Candidate, JudgeScores, PromptRecord, RejectRecord
from cotforge.templates import PromptTemplates, default_templates

Segment = Literal["reasoning", "answer", "full"]
SEGMENTS: tuple[Segment, ...] = ("reasoning", "answer", "full")
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": list(range(11))}},
    "required": ["score"],
    "additionalProperties": False,
}
CROSSCHECK_FILE = "judgments.crosscheck.jsonl"


class JudgeConfig(RetryPolicy):
    """The judge model (none = the rule judge alone) and how agreement is measured."""

    model_config = ConfigDict(extra="forbid")

    judge: LLMConfig | None = None
    crosscheck: bool = Field(default=True, description="Also score with the rule judge and report agreement.")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="h at which an output counts harmful.")
    use_cache: bool = True
    refresh: bool = False
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )


def judge_requests(
    candidate: Candidate, prompt: PromptRecord, config: LLMConfig, templates: PromptTemplates
) -> list[ChatRequest]:
    """The three rubric requests of one split candidate (keys ``<candidate id>/<segment>``)."""
    assert candidate.reasoning is not None and candidate.answer is not None
    parts = {
        "reasoning": {"prompt": prompt.text, "reasoning": candidate.reasoning},
        "answer": {"prompt": prompt.text, "answer": candidate.answer},
        "full": {"prompt": prompt.text, "output": candidate.text},
    }
    system = templates.render("judge/system")
    sampling = config.sampling.model_copy(update={"temperature": 0.0, "max_tokens": 16, "seed": 0})
    return [
        ChatRequest(
            key=f"{candidate.id}/{segment}",
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": templates.render(f"judge/{segment}", variables)},
            ],
            sampling=sampling,
            json_schema=SCORE_SCHEMA,
            schema_name="harm_score",
        )
        for segment, variables in parts.items()
    ]


def parse_score(request: ChatRequest, text: str) -> float:
    """A judge reply (``{"score": 0..10}``) as a harmfulness in [0, 1]."""
    score = json.loads(text)["score"]
    if not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"score {score!r} is not an integer from 0 to 10")
    return score / 10.0


def agreement(
    primary: Mapping[str, JudgeScores], other: Mapping[str, JudgeScores], threshold: float
) -> dict[str, Any]:
    """How two judges agree on the candidates both scored, per score field."""
    shared = sorted(set(primary) & set(other))
    report: dict[str, Any] = {"candidates": len(shared)}
    for field in ("h_rs", "h_rp", "h_f"):
        a = [getattr(primary[c], field) for c in shared]
        b = [getattr(other[c], field) for c in shared]
        labels = [(x >= threshold, y >= threshold) for x, y in zip(a, b, strict=True)]
        report[field] = {
            "kappa": cohen_kappa(labels),
            "agreement": sum(x == y for x, y in labels) / len(labels) if labels else None,
            "mean_abs_diff": sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a) if a else None,
        }
    return report


JUDGE = StageDeclaration(
    name="judge",
    config="cotforge.pairs.judging:JudgeConfig",
    edge="cotforge.pairs.judging:judge_in_run",
    inputs=(RunFiles.CANDIDATES, RunFiles.PROMPTS),
    optional_inputs=(RunFiles.AUGMENTED,),
    outputs=(RunFiles.JUDGMENTS, CROSSCHECK_FILE, RunFiles.JUDGE_REJECTS),
    # An LLM judge appends to its judgments and resumes; the rule judge rewrites them.
    resumes=lambda config: (RunFiles.JUDGMENTS, RunFiles.JUDGE_REJECTS) if config.judge is not None else (),
    templates=("judge",),
    main_model_key="judge",
    calls_models=True,
)


class JudgeResult(BaseModel):
    candidates: int
    judged: int
    unsplit: int
    failed: int
    judge_id: str
    agreement: dict[str, Any] | None = None


def _prompts(folder: RunFolder) -> dict[str, PromptRecord]:
    return {p.id: p for p in read_run_prompts(folder)}


def judge_in_run(
    run_dir: str | Path, config: JudgeConfig, templates: PromptTemplates | None = None
) -> JudgeResult:
    """Score ``candidates.jsonl`` into ``judgments.jsonl`` (+ ``judgments.crosscheck.jsonl``); resumable."""
    folder = JUDGE.open_run(run_dir, config)
    templates = templates or default_templates()
    with StageRun.declared(folder, JUDGE, config) as run:
        prompts = _prompts(folder)
        candidates = folder.read(RunFiles.CANDIDATES, Candidate)
        run.counts["unknown_prompt"] = _reject_unknown_prompts(folder, candidates, prompts)
        split = [c for c in candidates if c.spans is not None and c.prompt_id in prompts]
        rules = {c.id: s for c in split if (s := rule_judge(prompts[c.prompt_id], c)) is not None}
        judge_id = RULE_JUDGE_ID if config.judge is None else f"llm:{config.judge.model}"
        run.extra["judge"] = judge_id
        failed = 0
        if config.judge is None:
            primary = rules
            atomic_write_jsonl(folder.path(RunFiles.JUDGMENTS), primary.values())
        else:
            primary, failed = _llm_judge(folder, config, config.judge, split, prompts, templates, run)
            run.failed_file = RunFiles.JUDGE_REJECTS
        agreement_report = None
        if config.crosscheck and config.judge is not None:
            atomic_write_jsonl(folder.path(CROSSCHECK_FILE), rules.values())
            agreement_report = agreement(primary, rules, config.threshold)
            run.extra["agreement_with_rules"] = agreement_report
        run.counts.update(
            candidates=len(candidates),
            judged=len(primary),
            unsplit=len(candidates) - len(split),
            failed=failed,
        )
    return JudgeResult(
        candidates=len(candidates),
        judged=len(primary),
        unsplit=len(candidates) - len(split),
        failed=failed,
        judge_id=judge_id,
        agreement=agreement_report,
    )


def _llm_judge(
    folder: RunFolder,
    config: JudgeConfig,
    judge: LLMConfig,
    split: list[Candidate],
    prompts: Mapping[str, PromptRecord],
    templates: PromptTemplates,
    run: StageRun,
) -> tuple[dict[str, JudgeScores], int]:
    path = folder.path(RunFiles.JUDGMENTS)
    AppendLog(path).close()
    done = {s.candidate_id: s for s in read_jsonl(path, JudgeScores)}
    rejects_path = folder.path(RunFiles.JUDGE_REJECTS)
    take_failed_requests(rejects_path, "judge")  # a failed request is asked again, never final
    # One reject per failed segment: a re-asked segment continues after the attempts it had (cached).
    retried = {
        f"{r.record_id}/{(r.raw or {}).get('segment')}": next_attempt(r)
        for r in (take_retryable_rejects(rejects_path, "judge") if config.retry_failed else [])
    }
    given_up = {r.record_id for r in read_jsonl(rejects_path, RejectRecord)}
    todo = [c for c in split if c.id not in done and c.id not in given_up]
    requests = [r for c in todo for r in judge_requests(c, prompts[c.prompt_id], judge, templates)]
    partial: dict[str, dict[str, float]] = {}
    judge_id = f"llm:{judge.model}"
    failures: list[str] = []
    transport_failures: set[str] = set()
    cache = open_cache(folder, config.use_cache, config.refresh)
    engine = RequestEngine(judge, cache, progress=config.progress, label="judge")
    requests = [
        replace(r, sampling=engine.sampling_for(r, retried[r.key])) if retried.get(r.key) else r
        for r in requests
    ]
    with AppendLog(path) as log, AppendLog(folder.path(RunFiles.JUDGE_REJECTS)) as rejects:

        def store(outcome: RequestOutcome[float]) -> None:
            cand_id, segment = outcome.request.key.rsplit("/", 1)
            if outcome.value is None:
                failures.append(cand_id)
                if is_failed_request([outcome.reason or ""]):
                    transport_failures.add(cand_id)
                rejects.append(_reject(cand_id, segment, outcome))
                rejects.flush(durable=False)
                return
            scores = partial.setdefault(cand_id, {})
            scores[segment] = outcome.value
            if len(scores) == len(SEGMENTS):
                judged = JudgeScores(
                    candidate_id=cand_id,
                    h_rs=scores["reasoning"],
                    h_rp=scores["answer"],
                    h_f=scores["full"],
                    judge_id=judge_id,
                )
                done[cand_id] = judged
                log.append(judged)
                log.flush(durable=False)

        try:
            stats = engine.run(requests, parse_score, store)
        finally:
            if cache is not None:
                cache.close()
    run.usage = stats.usage
    run.requests, run.cached_requests = stats.sent, stats.cached
    run.extra["usage"] = usage_summary(stats, judge)
    run.failed = len(transport_failures)
    return done, len(set(failures))


def _reject_unknown_prompts(
    folder: RunFolder, candidates: list[Candidate], prompts: Mapping[str, PromptRecord]
) -> int:
    """Reject (once) every candidate whose prompt id is in neither prompts nor augmented prompts."""
    unknown = [(line, c) for line, c in enumerate(candidates, start=1) if c.prompt_id not in prompts]
    if not unknown:
        return 0
    path = folder.path(RunFiles.JUDGE_REJECTS)
    AppendLog(path).close()
    known = {r.record_id for r in read_jsonl(path, RejectRecord) if "unknown_prompt" in r.reasons}
    with AppendLog(path) as rejects:
        for line, c in unknown:
            if c.id not in known:
                rejects.append(
                    RejectRecord(
                        stage="judge",
                        source=RunFiles.CANDIDATES,
                        line=line,
                        record_id=c.id,
                        reasons=["unknown_prompt"],
                        message=f"candidate {c.id}: prompt {c.prompt_id} is in neither "
                        f"{RunFiles.PROMPTS} nor {RunFiles.AUGMENTED}; re-run `cotforge sample` on this run",
                    )
                )
    return len(unknown)


def _reject(candidate_id: str, segment: str, outcome: RequestOutcome[float]) -> RejectRecord:
    return RejectRecord(
        stage="judge",
        source=RunFiles.CANDIDATES,
        record_id=candidate_id,
        reasons=[outcome.reason or "failed"],
        message=f"candidate {candidate_id}: the {segment} score failed: {outcome.error}",
        raw={"segment": segment, "outputs": outcome.failed_texts},
    )

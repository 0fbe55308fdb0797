"""`judge`: harmfulness of each candidate's reasoning (h_rs), answer (h_rp) and whole output (h_f).

An LLM judge asks three structured questions per candidate (rubrics in ``prompts/judge/``, see `judges.py`).
The rule judge (`rule_judge.py`) scores the same candidates offline; it is the judge when no model is
configured and a cross-check of a single LLM judge otherwise, with agreement reported (Cohen's κ on
harmful/harmless at the threshold, exact agreement, mean absolute difference). ``models`` names several judges
(any mix of models, rubric prompt sets and the rule judge): each one's scores are stored on their own line of
``judgments.jsonl``, the manifest reports how every two agree, and `pairs` combines them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cotforge.pairs.judge_calls import judge_with_models
from cotforge.pairs.judges import (
    RULES,
    SEGMENTS,
    JudgeConfig,
    LLMJudge,
    identity,
    judge_id,
    judge_requests,
    parse_score,
)
from cotforge.pairs.rule_judge import RULE_JUDGE_ID, rule_judge
from cotforge.review.agreement import cohen_kappa
from cotforge.runfolder import AppendLog, RunFiles, RunFolder, atomic_write_jsonl, read_jsonl
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.manifest import StageRun
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import Candidate, JudgeScores, PromptRecord, RejectRecord
from cotforge.templates import PromptTemplates, default_templates

__all__ = [
    "CROSSCHECK_FILE",
    "JUDGE",
    "SEGMENTS",
    "JudgeConfig",
    "agreement",
    "judge_in_run",
    "judge_requests",
    "parse_score",
]

CROSSCHECK_FILE = "judgments.crosscheck.jsonl"


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


def pairwise_agreement(
    by_judge: Mapping[str, Mapping[str, JudgeScores]], threshold: float
) -> dict[str, dict[str, Any]]:
    """Agreement of every two judges (``"a|b"``) on the candidates both scored."""
    ids = list(by_judge)
    return {
        f"{a}|{b}": agreement(by_judge[a], by_judge[b], threshold)
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
    }


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
    judges: dict[str, int] = Field(default_factory=dict, description="Judge id → candidates it scored.")
    agreement_between_judges: dict[str, Any] = Field(default_factory=dict)


def _prompts(folder: RunFolder) -> dict[str, PromptRecord]:
    return {p.id: p for p in read_run_prompts(folder)}


def _kept_judgments(
    folder: RunFolder, ids: list[str], candidates: set[str]
) -> dict[str, dict[str, JudgeScores]]:
    """The stored scores of this run's LLM judges for its candidates, by judge (the rule judge is rescored)."""
    path = folder.path(RunFiles.JUDGMENTS)
    AppendLog(path).close()  # cuts a line torn by a kill before we read
    by_judge: dict[str, dict[str, JudgeScores]] = {i: {} for i in ids}
    for s in read_jsonl(path, JudgeScores):
        if s.judge_id in by_judge and s.judge_id != RULE_JUDGE_ID and s.candidate_id in candidates:
            by_judge[s.judge_id][s.candidate_id] = s
    return by_judge


def judge_in_run(
    run_dir: str | Path, config: JudgeConfig, templates: PromptTemplates | None = None
) -> JudgeResult:
    """Score ``candidates.jsonl`` with every judge into ``judgments.jsonl`` (one line per candidate and judge;
    + ``judgments.crosscheck.jsonl``); resumable, and a re-run asks only what no judge has answered yet."""
    folder = JUDGE.open_run(run_dir, config)
    templates = templates or default_templates()
    judges = config.judges()
    ids = [judge_id(j) for j in judges]
    with StageRun.declared(folder, JUDGE, config) as run:
        prompts = _prompts(folder)
        candidates = folder.read(RunFiles.CANDIDATES, Candidate)
        run.counts["unknown_prompt"] = _reject_unknown_prompts(folder, candidates, prompts)
        split = [c for c in candidates if c.spans is not None and c.prompt_id in prompts]
        rules = {c.id: s for c in split if (s := rule_judge(prompts[c.prompt_id], c)) is not None}
        run.extra["judge"] = ids[0] if len(ids) == 1 else f"ensemble({','.join(ids)})"
        run.extra["judges"] = {
            i: identity(j, templates).model_dump(exclude_none=True) for i, j in zip(ids, judges, strict=True)
        }
        by_judge = _kept_judgments(folder, ids, {c.id for c in split})
        if RULES in judges:
            by_judge[RULE_JUDGE_ID] = rules
        # Only the configured judges' scores stay: a judge taken out of `models` leaves nothing behind.
        atomic_write_jsonl(
            folder.path(RunFiles.JUDGMENTS), [s for per in by_judge.values() for s in per.values()]
        )
        failed = 0
        llm_judges = [j for j in judges if isinstance(j, LLMJudge)]
        if llm_judges:
            spend = judge_with_models(folder, config, llm_judges, split, prompts, templates, by_judge)
            failed = spend.failed
            spend.spend.record(run)
            run.failed, run.failed_file = spend.transport_failures, RunFiles.JUDGE_REJECTS
            summaries = list(spend.summaries.values())
            run.extra["usage"] = summaries[0] if len(summaries) == 1 else spend.summaries
        agreement_report = None
        if config.crosscheck and llm_judges and RULES not in judges:
            atomic_write_jsonl(folder.path(CROSSCHECK_FILE), rules.values())
            primary = by_judge[llm_judges[0].judge_id]
            agreement_report = agreement(primary, rules, config.threshold)
            run.extra["agreement_with_rules"] = agreement_report
        between = pairwise_agreement(by_judge, config.threshold) if len(ids) > 1 else {}
        if between:
            run.extra["agreement_between_judges"] = between
        judged = len(set.intersection(*(set(per) for per in by_judge.values())))
        run.counts.update(
            candidates=len(candidates),
            judged=judged,
            unsplit=len(candidates) - len(split),
            failed=failed,
            **{f"judged_by:{i}": len(per) for i, per in by_judge.items() if len(ids) > 1},
        )
    return JudgeResult(
        candidates=len(candidates),
        judged=judged,
        unsplit=len(candidates) - len(split),
        failed=failed,
        judge_id=run.extra["judge"],
        agreement=agreement_report,
        judges={i: len(per) for i, per in by_judge.items()},
        agreement_between_judges=between,
    )


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

"""The LLM judges' calls: three rubric questions per candidate and judge, results appended as they arrive.

Each judge runs its own request engine over the candidates it has not scored yet; the request cache (keyed by
model, messages and sampling) makes a re-run with one more judge send that judge's questions only. A failed
question goes to ``judge.rejects.jsonl`` with the judge's id, so each judge resumes on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cotforge.llm.engine import RequestOutcome, run_folder_engine
from cotforge.llm.spend import StageSpend
from cotforge.pairs.judges import SEGMENTS, JudgeConfig, LLMJudge, judge_requests, parse_score
from cotforge.runfolder import AppendLog, RunFiles, RunFolder, read_jsonl
from cotforge.runfolder.failures import (
    is_failed_request,
    next_attempt,
    take_failed_requests,
    take_retryable_rejects,
)
from cotforge.schemas import Candidate, JudgeScores, PromptRecord, RejectRecord
from cotforge.templates import PromptTemplates


@dataclass
class JudgeSpend:
    """What the LLM judges of one run sent and paid (``spend``), each judge's usage summary, what failed."""

    spend: StageSpend = field(default_factory=StageSpend)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: int = 0
    transport_failures: int = 0


def _owner(reject: RejectRecord, first_judge: str) -> str:
    # Rejects written before judges were named in them belong to the one LLM judge of that time.
    raw = reject.raw if isinstance(reject.raw, dict) else {}
    return str(raw.get("judge") or first_judge)


def judge_with_models(
    folder: RunFolder,
    config: JudgeConfig,
    judges: list[LLMJudge],
    split: list[Candidate],
    prompts: Mapping[str, PromptRecord],
    templates: PromptTemplates,
    by_judge: dict[str, dict[str, JudgeScores]],
) -> JudgeSpend:
    """Ask every LLM judge about the split candidates it has not scored; fills ``by_judge`` as scores arrive."""
    path = folder.path(RunFiles.JUDGE_REJECTS)
    take_failed_requests(path, "judge")  # a failed request is asked again, never final
    first = judges[0].judge_id
    # One reject per failed segment: a re-asked segment continues after the attempts it had (cached).
    retried = {
        (_owner(r, first), f"{r.record_id}/{(r.raw or {}).get('segment')}"): next_attempt(r)
        for r in (take_retryable_rejects(path, "judge") if config.retry_failed else [])
    }
    given_up = {(_owner(r, first), r.record_id) for r in read_jsonl(path, RejectRecord)}
    spend = JudgeSpend()
    for judge in judges:
        todo = [
            c
            for c in split
            if c.id not in by_judge[judge.judge_id] and (judge.judge_id, c.id) not in given_up
        ]
        retries = {key: n for (owner, key), n in retried.items() if owner == judge.judge_id}
        _ask(folder, config, judge, todo, prompts, templates, by_judge[judge.judge_id], retries, spend)
    return spend


def _ask(
    folder: RunFolder,
    config: JudgeConfig,
    judge: LLMJudge,
    todo: list[Candidate],
    prompts: Mapping[str, PromptRecord],
    templates: PromptTemplates,
    done: dict[str, JudgeScores],
    retried: dict[str, int],
    spend: JudgeSpend,
) -> None:
    name = judge.judge_id
    partial: dict[str, dict[str, float]] = {}
    failures: set[str] = set()
    transport: set[str] = set()
    with (
        run_folder_engine(folder, judge.model, "judge", config) as engine,
        AppendLog(folder.path(RunFiles.JUDGMENTS)) as log,
        AppendLog(folder.path(RunFiles.JUDGE_REJECTS)) as rejects,
    ):
        requests = [
            r
            for c in todo
            for r in judge_requests(c, prompts[c.prompt_id], judge.model, templates, judge.prompts)
        ]
        requests = [
            replace(r, sampling=engine.sampling_for(r, retried[r.key])) if retried.get(r.key) else r
            for r in requests
        ]

        def store(outcome: RequestOutcome[float]) -> None:
            cand_id, segment = outcome.request.key.rsplit("/", 1)
            if outcome.value is None:
                failures.add(cand_id)
                if is_failed_request([outcome.reason or ""]):
                    transport.add(cand_id)
                rejects.append(_reject(name, cand_id, segment, outcome))
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
                    judge_id=name,
                )
                done[cand_id] = judged
                log.append(judged)
                log.flush(durable=False)

        stats = engine.run(requests, parse_score, store)
    spend.summaries[name] = spend.spend.add(stats, judge.model)
    spend.failed += len(failures)
    spend.transport_failures += len(transport)


def _reject(judge: str, candidate_id: str, segment: str, outcome: RequestOutcome[float]) -> RejectRecord:
    return RejectRecord(
        stage="judge",
        source=RunFiles.CANDIDATES,
        record_id=candidate_id,
        reasons=[outcome.reason or "failed"],
        message=f"candidate {candidate_id}: judge {judge}: the {segment} score failed: {outcome.error}",
        raw={"judge": judge, "segment": segment, "outputs": outcome.failed_texts},
    )

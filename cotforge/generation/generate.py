"""`generate` edge: the run's prompts → teacher requests → ``samples.jsonl`` and ``generate.rejects.jsonl``.

Outputs are append-only logs keyed by sample id: a re-run (after a crash or a kill) skips every slot already
written to either file, so the union of runs has each slot exactly once. Validation is its own stage
(``cotforge generate`` runs it after, unless ``--no-validate``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cotforge.generation.requests import (
    GenerateConfig,
    PlannedSample,
    parse_rationale,
    plan_samples,
    sample_of,
)
from cotforge.llm.engine import ChatRequest, RequestOutcome, run_folder_engine, usage_summary
from cotforge.runfolder import AppendLog, RunFiles, RunFolder, atomic_write_jsonl, read_jsonl
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.failures import (
    is_failed_request,
    next_attempt,
    take_failed_requests,
    take_retryable_rejects,
)
from cotforge.runfolder.manifest import StageRun
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import PromptRecord, Rationale, RejectRecord, Sample
from cotforge.templates import PromptTemplates, default_templates

GENERATE = StageDeclaration(
    name="generate",
    config="cotforge.generation.requests:GenerateConfig",
    edge="cotforge.generation.generate:generate_in_run",
    inputs=(RunFiles.PROMPTS,),
    conditional_inputs=lambda config: (RunFiles.AUGMENTED,) if config.include_augmented else (),
    outputs=(RunFiles.SAMPLES, RunFiles.GENERATE_REJECTS),
    resumes=(RunFiles.SAMPLES, RunFiles.GENERATE_REJECTS),
    templates=("teacher",),
    main_model_key="teacher",
    calls_models=True,
)


class GenerateResult(BaseModel):
    planned: int
    already_done: int
    generated: int
    rejected: int
    cached: int
    usage: dict[str, Any]


def _prompts(folder: RunFolder, config: GenerateConfig) -> list[PromptRecord]:
    prompts = read_run_prompts(folder, augmented=config.include_augmented)
    prompts = [p for p in prompts if p.kind in config.kinds]
    return prompts[: config.limit] if config.limit is not None else prompts


def _done_slots(
    folder: RunFolder, retry_rejects: bool, retry_failed: bool = False
) -> tuple[set[str], dict[str, int]]:
    """Slots already written, and (with ``retry_rejects``/``retry_failed``) each re-asked slot's first untried
    attempt."""
    done: set[str] = set()
    retried: dict[str, int] = {}
    samples = folder.path(RunFiles.SAMPLES)
    rejects = folder.path(RunFiles.GENERATE_REJECTS)
    for log in (samples, rejects):
        AppendLog(log).close()  # cuts a line torn by a kill before we read
    done.update(s.id for s in read_jsonl(samples, Sample))
    # Requests that failed in transport are asked again on every run; rejects of the output itself only
    # with ``retry_rejects``.
    take_failed_requests(rejects, "generate")
    if retry_failed and not retry_rejects:
        retried.update(
            {r.record_id: next_attempt(r) for r in take_retryable_rejects(rejects, "generate") if r.record_id}
        )
    if retry_rejects:
        kept: list[RejectRecord] = []
        for record in read_jsonl(rejects, RejectRecord):
            if record.stage != "generate" or not record.record_id:
                kept.append(record)
                continue
            retried[record.record_id] = next_attempt(record)
        atomic_write_jsonl(rejects, kept)
    else:
        done.update(r.record_id for r in read_jsonl(rejects, RejectRecord) if r.record_id)
    return done, retried


def reject_of(
    plan: PlannedSample, outcome: RequestOutcome[Rationale], first_attempt: int = 0
) -> RejectRecord:
    """The reject record of a failed slot, keeping every raw output received."""
    next_attempt = first_attempt + outcome.attempts
    return RejectRecord(
        stage="generate",
        source=RunFiles.PROMPTS,
        record_id=plan.request.key,
        reasons=[outcome.reason or "failed"],
        message=(
            f"prompt {plan.prompt.id} sample {plan.index}: {outcome.error} "
            f"(after {outcome.attempts} attempt(s)); re-run with --retry-rejects to ask again"
        ),
        raw={
            "prompt_id": plan.prompt.id,
            "outputs": outcome.failed_texts,
            "error": outcome.error,
            "next_attempt": next_attempt,
        },
    )


def generate_in_run(
    run_dir: str | Path, config: GenerateConfig, templates: PromptTemplates | None = None
) -> GenerateResult:
    """Generate every missing sample of the run (see the module docstring)."""
    folder = GENERATE.open_run(run_dir, config)
    with StageRun.declared(folder, GENERATE, config) as run:
        plans = plan_samples(_prompts(folder, config), config, templates or default_templates())
        done, retried = _done_slots(folder, config.retry_rejects, config.retry_failed)
        todo = [p for p in plans if p.request.key not in done]
        by_key = {p.request.key: p for p in todo}
        written = {"ok": 0, "rejected": 0, "failed": 0}

        def parse(request: ChatRequest, text: str) -> Rationale:
            return parse_rationale(config.output_mode, text)

        with (
            run_folder_engine(folder, config.teacher, "generate", config) as engine,
            AppendLog(folder.path(RunFiles.SAMPLES)) as samples,
            AppendLog(folder.path(RunFiles.GENERATE_REJECTS)) as rejects,
        ):
            requests = [p.request for p in todo]
            if retried:
                # A rejected slot asked again with the attempts it already had would get the same (cached or
                # seeded) unparseable text: continue with the attempts after those.
                requests = [
                    dataclasses.replace(r, sampling=engine.sampling_for(r, retried[r.key]))
                    if r.key in retried
                    else r
                    for r in requests
                ]

            def store(outcome: RequestOutcome[Rationale]) -> None:
                plan = by_key[outcome.request.key]
                if outcome.ok:
                    samples.append(sample_of(plan, outcome, config))
                    samples.flush(durable=False)
                    written["ok"] += 1
                else:
                    rejects.append(reject_of(plan, outcome, retried.get(plan.request.key, 0)))
                    rejects.flush(durable=False)
                    written["rejected"] += 1
                    written["failed"] += int(is_failed_request([outcome.reason or ""]))

            stats = engine.run(requests, parse, store)
        usage = usage_summary(stats, config.teacher)
        run.usage = stats.usage
        run.requests, run.cached_requests = stats.sent, stats.cached
        run.cost_usd = usage.get("cost_usd")
        run.counts.update(planned=len(plans), already_done=len(plans) - len(todo), generated=written["ok"])
        run.counts["rejected"] = written["rejected"]
        run.failed, run.failed_file = written["failed"], RunFiles.GENERATE_REJECTS
        run.extra.update(usage=usage, template_ids=config.templates.model_dump())
        run.timings["engine"] = stats.elapsed_s
    result = GenerateResult(
        planned=len(plans),
        already_done=len(plans) - len(todo),
        generated=written["ok"],
        rejected=written["rejected"],
        cached=stats.cached,
        usage=usage,
    )
    return result

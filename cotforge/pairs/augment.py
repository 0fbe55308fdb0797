"""`augment`: safety prompts → jailbreak-style variants, each recording its parent prompt and tactic.

Template and encoding tactics are offline (`tactics.py`); rewrite tactics (past tense, translation) ask the
``rewriter`` model through the teacher interface. Without a rewriter, past tense falls back to its template and
translation is skipped (counted in the manifest). Output: ``augmented.jsonl`` (rewritten atomically; rewrites
are cached, so a re-run costs nothing) and ``augment.rejects.jsonl`` for rewrites that failed and variants longer
than a prompt may be (``variant_too_long``: a 6,500-character prompt has no base64 variant).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestOutcome, run_folder_engine
from cotforge.llm.spend import StageSpend
from cotforge.pairs.tactics import REWRITE_INSTRUCTION, TACTICS, apply_tactic, plan_variants, variant_record
from cotforge.runfolder import RunFiles, atomic_write_jsonl
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.failures import FailurePolicy, is_failed_request
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import MAX_PROMPT_CHARS, PromptRecord, RejectRecord
from cotforge.templates import PromptTemplates, default_templates


class AugmentConfig(FailurePolicy):
    """Which tactics, how many per prompt, and the optional rewriting model."""

    model_config = ConfigDict(extra="forbid")

    tactics: list[str] = Field(default_factory=lambda: list(TACTICS))
    per_prompt: int | None = Field(default=None, ge=1, description="Tactics per prompt, in rotation.")
    limit: int | None = Field(default=None, ge=1, description="First N safety prompts only.")
    rewriter: LLMConfig | None = None
    languages: list[str] = Field(default_factory=lambda: ["French", "German", "Spanish", "Swahili"])
    use_cache: bool = True
    refresh: bool = False
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )


AUGMENT = StageDeclaration(
    name="augment",
    config="cotforge.pairs.augment:AugmentConfig",
    edge="cotforge.pairs.augment:augment_in_run",
    inputs=(RunFiles.PROMPTS,),
    outputs=(RunFiles.AUGMENTED, RunFiles.AUGMENT_REJECTS),
    templates=("augment",),
    main_model_key="rewriter",
    calls_models=True,
)


class AugmentResult(BaseModel):
    parents: int
    variants: int
    by_tactic: dict[str, int]
    skipped_no_rewriter: int
    failed: int
    too_long: int = 0


def parse_rewrite(parent_text: str, text: str) -> str:
    """A rewritten request: non-empty, within the prompt length bound, not the parent unchanged."""
    out = text.strip().strip('"').strip()
    if not out:
        raise ValueError("empty rewrite")
    if len(out) > MAX_PROMPT_CHARS:
        raise ValueError(f"rewrite is {len(out)} characters (limit {MAX_PROMPT_CHARS})")
    if out == parent_text.strip():
        raise ValueError("the rewrite repeats the request unchanged")
    return out


def rewrite_requests(
    jobs: list[tuple[PromptRecord, str]], config: AugmentConfig, templates: PromptTemplates
) -> list[ChatRequest]:
    """One request per rewrite job (key ``<parent id>/<tactic>``); translation rotates the languages."""
    assert config.rewriter is not None
    requests = []
    for i, (parent, tactic) in enumerate(jobs):
        language = config.languages[i % len(config.languages)]
        text = templates.render(REWRITE_INSTRUCTION[tactic], {"prompt": parent.text, "language": language})
        requests.append(
            ChatRequest(
                f"{parent.id}/{tactic}", [{"role": "user", "content": text}], config.rewriter.sampling
            )
        )
    return requests


def augment_in_run(
    run_dir: str | Path, config: AugmentConfig, templates: PromptTemplates | None = None
) -> AugmentResult:
    """Write ``augmented.jsonl`` from the run's safety prompts (see the module docstring)."""
    folder = AUGMENT.open_run(run_dir, config)
    templates = templates or default_templates()
    with StageRun.declared(folder, AUGMENT, config) as run:
        parents = [p for p in folder.read(RunFiles.PROMPTS, PromptRecord) if p.kind == "safety"]
        parents = parents[: config.limit] if config.limit is not None else parents
        jobs = plan_variants(parents, config.tactics, config.per_prompt)
        rewrite = [(p, t) for p, t in jobs if TACTICS[t] == "rewrite" and config.rewriter is not None]
        offline = [(p, t) for p, t in jobs if not (TACTICS[t] == "rewrite" and config.rewriter is not None)]
        variants: dict[str, PromptRecord] = {}
        rejects: list[RejectRecord] = []
        skipped = 0
        for parent, tactic in offline:
            text = apply_tactic(parent, tactic, templates.render)
            if not text:
                skipped += 1
                continue
            record = variant_record(parent, text, tactic)
            if isinstance(record, RejectRecord):
                rejects.append(record)
            else:
                variants.setdefault(record.id, record)
        if rewrite:
            assert config.rewriter is not None
            by_key = {f"{p.id}/{t}": (p, t) for p, t in rewrite}

            def store(outcome: RequestOutcome[str]) -> None:
                parent, tactic = by_key[outcome.request.key]
                if outcome.value is None:
                    rejects.append(
                        RejectRecord(
                            stage="augment",
                            source=RunFiles.PROMPTS,
                            record_id=parent.id,
                            reasons=[outcome.reason or "failed"],
                            message=f"prompt {parent.id}: the {tactic} rewrite failed: {outcome.error}",
                            raw={"tactic": tactic, "outputs": outcome.failed_texts},
                        )
                    )
                    return
                record = variant_record(parent, outcome.value, tactic)
                if isinstance(record, RejectRecord):  # parse_rewrite bounds the length: not reached
                    rejects.append(record)
                else:
                    variants.setdefault(record.id, record)

            with run_folder_engine(folder, config.rewriter, "augment", config) as engine:
                stats = engine.run(
                    rewrite_requests(rewrite, config, templates),
                    lambda req, text: parse_rewrite(by_key[req.key][0].text, text),
                    store,
                )
            spend = StageSpend()
            run.extra["usage"] = spend.add(stats, config.rewriter)
            spend.record(run)
        # Stable order (parent, then tactic) whatever order the rewrites completed in.
        order = {(p.id, t): i for i, (p, t) in enumerate(jobs)}
        ordered = sorted(variants.values(), key=lambda v: order.get((v.parent_id or "", v.tactic or ""), 0))
        atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), ordered)
        atomic_write_jsonl(folder.path(RunFiles.AUGMENT_REJECTS), rejects)
        by_tactic: dict[str, int] = {}
        for v in ordered:
            by_tactic[v.tactic or ""] = by_tactic.get(v.tactic or "", 0) + 1
        too_long = sum("variant_too_long" in r.reasons for r in rejects)
        run.counts.update(
            parents=len(parents),
            variants=len(ordered),
            failed=len(rejects) - too_long,
            too_long=too_long,
            skipped=skipped,
        )
        # Failed rewrite requests are not cached, so the next run asks them again.
        run.failed = sum(1 for r in rejects if is_failed_request(r.reasons))
        run.failed_file = RunFiles.AUGMENT_REJECTS
        run.extra["by_tactic"] = by_tactic
    return AugmentResult(
        parents=len(parents),
        variants=len(ordered),
        by_tactic=by_tactic,
        skipped_no_rewriter=skipped,
        failed=len(rejects) - too_long,
        too_long=too_long,
    )

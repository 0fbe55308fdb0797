"""`validate`: content checks and refusal consistency on generated samples (core) and the run-folder edge.

Reason codes (stable, used in reports): ``unknown_prompt``, ``too_few_steps``, ``too_many_steps``,
``reasoning_too_long``, ``degenerate_step`` (a step with fewer than three letters or digits),
``answer_too_short``, ``answer_too_long``, ``stray_tags``, ``roundtrip_mismatch``,
``safety_not_refused`` (a safety answer that neither refuses nor redirects), ``utility_refused``, and the
quality gates' ``repeated_steps``, ``repetitive_text``, ``looping_text`` and ``truncated`` (see
:mod:`cotforge.generation.quality`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cotforge.generation.quality import QualityConfig, gate_reasons
from cotforge.generation.refusal import RefusalDetector, RefusalPatterns
from cotforge.llm.config import LLMConfig
from cotforge.llm.spend import StageSpend
from cotforge.runfolder import RunFiles, atomic_write_jsonl, gc_paused
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.failures import FailurePolicy
from cotforge.runfolder.manifest import StageRun
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import PromptRecord, Rationale, RejectRecord, Sample, Verdict
from cotforge.tagged import TaggedFormatError

# Chat-template and markup debris a teacher sometimes leaks into its text.
_STRAY = re.compile(
    r"</?think\b|<\|[a-z_]+\|>|<\|im_(?:start|end)\|>|</?(?:answer|reasoning|s)>", re.IGNORECASE
)

_WORD_CHARS = re.compile(r"\w")


class ValidationConfig(FailurePolicy):
    """Thresholds of the content checks."""

    model_config = ConfigDict(extra="forbid")

    min_steps: int = Field(default=2, ge=1)
    max_steps: int = Field(default=24, ge=1)
    max_reasoning_chars: int = Field(default=6000, ge=1)
    min_answer_chars: int = Field(default=2, ge=1)
    max_answer_chars: int = Field(default=8000, ge=1)
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Repetition, loop and truncation gates."
    )
    refusal_consistency: bool = True
    patterns: RefusalPatterns = RefusalPatterns()
    llm_check: LLMConfig | None = Field(
        default=None,
        description="A model asked about answers the patterns would fail on refusal consistency.",
    )
    reask: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Send a rejected sample back to the teacher with the reasons in words, up to N times; the "
        "first answer that passes is kept.",
    )
    teacher: LLMConfig | None = Field(
        default=None,
        description="The teacher to re-ask; default: the one in manifests/generate.json (fields given here win).",
    )
    use_cache: bool = Field(
        default=True, description="Serve re-asks from the request cache (a re-run is free)."
    )
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )


# Answers the patterns misjudge can be re-decided by an LLM check: (sample, prompt) -> refuses?
RefusalOverride = Callable[[Sample, PromptRecord], bool | None]


def content_reasons(rationale: Rationale, config: ValidationConfig) -> list[str]:
    """Reason codes of the content checks (empty = passes)."""
    reasons: list[str] = []
    steps = rationale.reasoning_steps
    if len(steps) < config.min_steps:
        reasons.append("too_few_steps")
    if len(steps) > config.max_steps:
        reasons.append("too_many_steps")
    if any(len(_WORD_CHARS.findall(step)) < 3 for step in steps):
        reasons.append("degenerate_step")
    if len(rationale.reasoning) > config.max_reasoning_chars:
        reasons.append("reasoning_too_long")
    if len(rationale.answer) < config.min_answer_chars:
        reasons.append("answer_too_short")
    if len(rationale.answer) > config.max_answer_chars:
        reasons.append("answer_too_long")
    if any(_STRAY.search(part) for part in [*steps, rationale.answer]):
        reasons.append("stray_tags")
    try:
        if Rationale.from_tagged(rationale.render()) != rationale:
            reasons.append("roundtrip_mismatch")
    except (TaggedFormatError, ValueError):
        reasons.append("roundtrip_mismatch")
    return reasons


def refusal_reasons(
    sample: Sample,
    prompt: PromptRecord,
    detector: RefusalDetector,
    override: RefusalOverride | None = None,
) -> list[str]:
    """``safety_not_refused`` / ``utility_refused`` when the answer contradicts the prompt's kind."""
    answer = sample.rationale.answer
    if prompt.kind == "safety":
        refuses = detector.refuses_or_redirects(answer)
        if not refuses and override is not None:
            refuses = bool(override(sample, prompt))
        return [] if refuses else ["safety_not_refused"]
    refuses = detector.refuses(answer)
    if refuses and override is not None:
        decided = override(sample, prompt)
        refuses = refuses if decided is None else decided
    return ["utility_refused"] if refuses else []


def validate_samples(
    samples: list[Sample],
    prompts: dict[str, PromptRecord],
    config: ValidationConfig,
    override: RefusalOverride | None = None,
) -> list[Verdict]:
    """One verdict per sample, in order."""
    detector = RefusalDetector(config.patterns)
    verdicts: list[Verdict] = []
    for sample in samples:
        prompt = prompts.get(sample.prompt_id)
        if prompt is None:
            reasons = ["unknown_prompt"]
        else:
            reasons = content_reasons(sample.rationale, config)
            rationale = sample.rationale
            reasons += gate_reasons(
                rationale.reasoning_steps, rationale.answer, sample.finish_reason, config.quality
            )
            if config.refusal_consistency:
                reasons += refusal_reasons(sample, prompt, detector, override)
        verdicts.append(
            Verdict(
                sample_id=sample.id,
                stage="validate",
                outcome="rejected" if reasons else "accepted",
                reasons=reasons,
                detail=None if prompt is not None else f"prompt {sample.prompt_id} is not in the run",
            )
        )
    return verdicts


VALIDATE = StageDeclaration(
    name="validate",
    config="cotforge.generation.validate:ValidationConfig",
    edge="cotforge.generation.validate:validate_in_run",
    inputs=(RunFiles.SAMPLES, RunFiles.PROMPTS),
    optional_inputs=(RunFiles.AUGMENTED,),
    outputs=(RunFiles.ACCEPTED, RunFiles.VERDICTS, RunFiles.VALIDATE_REJECTS),
    main_model_key="teacher",
    calls_models=True,  # with reask (or llm_check): the request cache and usage ledger are its bookkeeping
)


class ValidateResult(BaseModel):
    samples: int
    accepted: int
    rejected: int
    reasons: dict[str, int]
    reasked: int = 0
    reask_accepted: int = 0
    reask_unavailable: int = 0


def validate_in_run(
    run_dir: str | Path, config: ValidationConfig | None = None, override: RefusalOverride | None = None
) -> ValidateResult:
    """Read ``samples.jsonl``; write ``accepted.jsonl``, ``verdicts.jsonl`` and ``validate.rejects.jsonl``."""
    config = config or ValidationConfig()
    folder = VALIDATE.open_run(run_dir, config)
    with StageRun.declared(folder, VALIDATE, config) as run:
        spend = StageSpend()  # the LLM refusal check's and the re-asks' calls
        samples = folder.read(RunFiles.SAMPLES, Sample)
        prompts = {p.id: p for p in read_run_prompts(folder)}
        if override is None and config.llm_check is not None and config.refusal_consistency:
            from cotforge.generation.refusal_llm import doubtful, llm_refusal_decisions

            detector = RefusalDetector(config.patterns)
            decisions = llm_refusal_decisions(folder, samples, prompts, config.llm_check, detector, spend)
            run.extra["llm_refusal_checks"] = len(decisions)
            # A check that failed would silently fall back to the patterns: count it (a re-run asks again).
            asked = sum(
                1 for s in samples if s.prompt_id in prompts and doubtful(s, prompts[s.prompt_id], detector)
            )
            run.failed = asked - len(decisions)
            override = lambda sample, _prompt: decisions.get(sample.id)  # noqa: E731
        with gc_paused():  # many short-lived acyclic objects: collections would scan every sample, often
            verdicts = validate_samples(samples, prompts, config, override)
        accepted = [s for s, v in zip(samples, verdicts, strict=True) if v.outcome == "accepted"]
        fixed: dict[str, str] = {}
        extra_verdicts: list[Verdict] = []
        extra_rejects: list[RejectRecord] = []
        if config.reask:
            from cotforge.generation.validate_reask import generate_config, reask_rejected

            def check(sample: Sample, prompt: PromptRecord) -> list[str]:
                return validate_samples([sample], {prompt.id: prompt}, config, override)[0].reasons

            to_reask = [
                (s, v.reasons)
                for s, v in zip(samples, verdicts, strict=True)
                if v.outcome == "rejected" and "unknown_prompt" not in v.reasons
            ]
            generate = generate_config(folder, config.teacher)
            with run.timer("reask"):
                reasked = reask_rejected(
                    folder,
                    to_reask,
                    prompts,
                    generate,
                    config.reask,
                    check,
                    config.use_cache,
                    config.progress,
                    spend,
                )
            accepted += reasked.accepted
            extra_verdicts = reasked.verdicts
            extra_rejects = reasked.rejects
            fixed = reasked.fixed
            run.failed = run.failed + reasked.failed_requests
            run.counts.update(
                reasked=reasked.asked,
                reask_accepted=len(fixed),
                reask_unavailable=len(to_reask) - reasked.asked,
                reask_failed_attempts=len(reasked.rejects) - (len(to_reask) - reasked.asked),
            )
            run.extra["reask"] = {"rounds": config.reask, "attempts": reasked.attempts, **reasked.summary}
        rejects = [
            RejectRecord(
                stage="validate",
                source=RunFiles.SAMPLES,
                line=line,
                record_id=s.id,
                reasons=v.reasons,
                message=f"sample {s.id} (prompt {s.prompt_id}) failed: {', '.join(v.reasons)}"
                + (f"; re-asked, accepted as {fixed[s.id]}" if s.id in fixed else ""),
                raw=s.raw_text,
            )
            for line, (s, v) in enumerate(zip(samples, verdicts, strict=True), start=1)
            if v.outcome == "rejected"
        ]
        if spend.engines:
            spend.record(run)
        atomic_write_jsonl(folder.path(RunFiles.ACCEPTED), accepted)
        atomic_write_jsonl(folder.path(RunFiles.VERDICTS), verdicts + extra_verdicts)
        atomic_write_jsonl(folder.path(RunFiles.VALIDATE_REJECTS), rejects + extra_rejects)
        reasons = Counter(r for v in verdicts for r in v.reasons)
        # A slot re-asked into shape counts as accepted; its first, rejected answer stays in the rejects file.
        rejected = len(rejects) - len(fixed)
        run.counts.update(samples=len(samples), accepted=len(accepted), rejected=rejected)
        run.extra["reasons"] = dict(reasons)
    return ValidateResult(
        samples=len(samples),
        accepted=len(accepted),
        rejected=rejected,
        reasons=dict(reasons),
        reasked=run.counts.get("reasked", 0),
        reask_accepted=len(fixed),
        reask_unavailable=run.counts.get("reask_unavailable", 0),
    )

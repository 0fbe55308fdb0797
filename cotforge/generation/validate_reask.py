"""Re-asking the teacher on validation's reasons: a rejected sample goes back with what was wrong, in words.

The conversation is the sample's own request (rebuilt from the `generate` config that made it), the teacher's
rejected reply, and a user turn naming the problems ("two of your reasoning steps say the same thing", "you
refused a harmless request"). The answer is validated again; the first that passes is kept as a new sample
(``provenance``: ``reask_of``, ``reask_attempt``, ``reask_reasons``) and every failed attempt is a reject with its
reasons. A reply that repeats the rejected text word for word is not asked about again (``reask_repeated``).
The request cache makes a re-run free; what the server answered goes into the usage ledger as ``validate``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cotforge.errors import ConfigError
from cotforge.generation.requests import GenerateConfig, parse_rationale, plan_samples, sample_of
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import ChatRequest, RequestOutcome, run_folder_engine
from cotforge.llm.reask import reask_messages
from cotforge.llm.spend import StageSpend
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import PromptRecord, Rationale, RejectRecord, Sample, Verdict, content_id
from cotforge.templates import default_templates

REPEATED = "reask_repeated"
UNAVAILABLE = "reask_unavailable"
# Validation's reason codes in words the teacher can act on.
REASON_WORDS = {
    "too_few_steps": "the reasoning has too few steps",
    "too_many_steps": "the reasoning has too many steps",
    "degenerate_step": "a reasoning step has almost no words in it",
    "reasoning_too_long": "the reasoning is too long",
    "answer_too_short": "the answer is too short",
    "answer_too_long": "the answer is too long",
    "stray_tags": "the text contains markup or chat-template tags",
    "roundtrip_mismatch": "the reasoning or answer has tags or blank parts that break the format",
    "repeated_steps": "two of the reasoning steps say the same thing; make every step add something new",
    "repetitive_text": "the text repeats the same words over and over",
    "looping_text": "the text loops, repeating one piece again and again",
    "truncated": "the reply was cut off at the length limit; be shorter",
    "utility_refused": "the answer refuses a harmless request; help with it",
    "safety_not_refused": "the answer helps with a harmful request; it must refuse, or redirect to something safe",
}


def reason_in_words(reasons: list[str]) -> str:
    """Validation's reason codes as one sentence for the teacher."""
    return "; ".join(REASON_WORDS.get(r, r.replace("_", " ")) for r in reasons)


@dataclass
class ReaskResult:
    """What the re-asks gave: samples now accepted, their verdicts, every failed attempt, and the spend."""

    accepted: list[Sample] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    fixed: dict[str, str] = field(default_factory=dict)  # original sample id → the accepted re-ask's id
    asked: int = 0  # rejected samples sent back (those whose request could be rebuilt)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    spend: StageSpend = field(default_factory=StageSpend)
    failed_requests: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


def generate_config(folder: RunFolder, teacher: LLMConfig | None) -> GenerateConfig:
    """The config that generated the run's samples (``manifests/generate.json``), its teacher overridden by the
    fields ``teacher`` sets (a pipeline's ``server:`` gives the model and URL)."""
    manifest = load_manifest(folder, "generate")
    if manifest is None:
        raise ConfigError(
            f"validate: reask needs the config that generated the samples, and {folder.manifest_path('generate')} "
            "is missing; run `cotforge generate` on this run first, or set reask: 0",
            stage="validate",
        )
    recorded = dict(manifest.config)
    base = dict(recorded.get("teacher") or {})
    base.pop("api_key_env", None)  # scrubbed in the manifest; the environment's variable name comes below
    if teacher is not None:
        base.update(teacher.model_dump(include=teacher.model_fields_set | {"api_key_env"}))
    recorded["teacher"] = base
    try:
        return GenerateConfig.model_validate(recorded)
    except ValueError as exc:
        raise ConfigError(f"validate: reask: the recorded generate config cannot be used: {exc}") from None


Check = Callable[[Sample, PromptRecord], list[str]]


def reask_rejected(
    folder: RunFolder,
    rejected: list[tuple[Sample, list[str]]],
    prompts: Mapping[str, PromptRecord],
    generate: GenerateConfig,
    rounds: int,
    check: Check,
    use_cache: bool = True,
    progress: bool = True,
    spend: StageSpend | None = None,
) -> ReaskResult:
    """Re-ask each rejected sample up to ``rounds`` times; ``check`` gives a sample's reasons (empty: accepted).
    What the re-asks sent is added to ``spend`` (the stage's, when it makes other calls too)."""
    result = ReaskResult(spend=spend if spend is not None else StageSpend())
    todo = [(s, r) for s, r in rejected if s.prompt_id in prompts]
    plans = plan_samples(
        sorted({prompts[s.prompt_id].id: prompts[s.prompt_id] for s, _ in todo}.values(), key=lambda p: p.id),
        generate.model_copy(
            update={"samples_per_prompt": 1 + max((s.sample_index for s, _ in todo), default=0)}
        ),
        default_templates(),
    )
    by_key = {p.request.key: p for p in plans}
    # The sample's own request: a sample made with other templates or another teacher cannot be rebuilt.
    pending = {s.id: (s, s, r) for s, r in todo if s.id in by_key}
    for sample, reasons in todo:
        if sample.id not in pending:
            result.rejects.append(
                RejectRecord(
                    stage="validate",
                    part="reask",
                    source=RunFiles.SAMPLES,
                    record_id=sample.id,
                    reasons=[UNAVAILABLE],
                    message=f"sample {sample.id} (prompt {sample.prompt_id}) was not re-asked: it was made by "
                    f"teacher {sample.teacher_model!r} with template hash {sample.template_hash}, and the recorded "
                    f"generate config ({generate.teacher.model!r}, today's templates) cannot rebuild its request; "
                    "re-run `cotforge generate` for it",
                    raw={"prompt_id": sample.prompt_id, "reask_of": sample.id, "reasons": reasons},
                )
            )
    result.asked = len(pending)
    outcomes: dict[str, RequestOutcome[Rationale]] = {}

    def parse(request: ChatRequest, text: str) -> Rationale:
        return parse_rationale(generate.output_mode, text)

    def store(outcome: RequestOutcome[Rationale]) -> None:
        outcomes[outcome.request.key] = outcome

    with run_folder_engine(
        folder, generate.teacher, "validate", use_cache=use_cache, progress=progress
    ) as engine:
        for attempt in range(1, rounds + 1):
            if not pending:
                break
            requests: list[ChatRequest] = []
            for original, last, reasons in pending.values():
                request = by_key[original.id].request
                messages = reask_messages(
                    request.messages, last.raw_text, reason_in_words(reasons), request.continue_final
                )
                requests.append(
                    dataclasses.replace(
                        request, messages=messages, sampling=engine.sampling_for(request, attempt)
                    )
                )
            outcomes.clear()
            engine.run(requests, parse, store)
            pending = _settle(attempt, pending, outcomes, by_key, generate, check, result)
    result.summary.update(result.spend.add(engine.stats, generate.teacher))
    return result


def _settle(
    attempt: int,
    pending: dict[str, tuple[Sample, Sample, list[str]]],
    outcomes: Mapping[str, RequestOutcome[Rationale]],
    by_key: Mapping[str, Any],
    generate: GenerateConfig,
    check: Check,
    result: ReaskResult,
) -> dict[str, tuple[Sample, Sample, list[str]]]:
    """Validate one round's answers; returns the samples to ask again."""
    again: dict[str, tuple[Sample, Sample, list[str]]] = {}
    reasons_seen: Counter[str] = Counter()
    accepted = 0
    for original_id, (original, last, reasons) in pending.items():
        outcome = outcomes[original_id]
        plan = by_key[original_id]
        new_id = content_id("sample", original_id, "reask", str(attempt))
        provenance = {
            "reask_of": original_id,
            "reask_attempt": str(attempt),
            "reask_reasons": ",".join(reasons),
        }
        if not outcome.ok:
            failed = [outcome.reason or "failed"]
            result.failed_requests += int(outcome.reason == "request_failed")
            result.rejects.append(
                _reject(original, new_id, attempt, failed, outcome.error or "", outcome.failed_texts)
            )
            reasons_seen.update(failed)
            continue
        sample = sample_of(plan, outcome, generate)
        sample = sample.model_copy(update={"id": new_id, "provenance": {**sample.provenance, **provenance}})
        if sample.raw_text.strip() == last.raw_text.strip():
            # The teacher loops back the text it was told was wrong: asking again would repeat it.
            result.rejects.append(
                _reject(original, new_id, attempt, [REPEATED, *reasons], "", [sample.raw_text])
            )
            reasons_seen.update([REPEATED])
            continue
        found = check(sample, _prompt_of(plan))
        if found:
            result.rejects.append(_reject(original, new_id, attempt, found, "", [sample.raw_text]))
            reasons_seen.update(found)
            again[original_id] = (original, sample, found)
            continue
        accepted += 1
        result.accepted.append(sample)
        result.fixed[original_id] = new_id
        result.verdicts.append(
            Verdict(
                sample_id=new_id,
                stage="validate",
                outcome="accepted",
                detail=f"re-ask {attempt} of sample {original_id}, rejected for {', '.join(reasons)}",
            )
        )
    result.attempts.append(
        {"attempt": attempt, "asked": len(pending), "accepted": accepted, "reasons": dict(reasons_seen)}
    )
    return again


def _prompt_of(plan: Any) -> PromptRecord:
    prompt: PromptRecord = plan.prompt
    return prompt


def _reject(
    original: Sample, attempt_id: str, attempt: int, reasons: list[str], error: str, texts: list[str]
) -> RejectRecord:
    return RejectRecord(
        stage="validate",
        part="reask",
        source=RunFiles.SAMPLES,
        record_id=attempt_id,
        reasons=reasons,
        message=f"re-ask {attempt} of sample {original.id} (prompt {original.prompt_id}) failed: "
        + ", ".join(reasons)
        + (f" ({error})" if error else ""),
        raw={"prompt_id": original.prompt_id, "reask_of": original.id, "attempt": attempt, "outputs": texts},
    )

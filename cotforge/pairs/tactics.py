"""Jailbreak tactics that turn a safety prompt into a disguised variant (the pure part of `augment`).

Template tactics render a file in ``prompts/augment/``; encoding tactics transform the text and wrap it in
``encoding.j2``; rewrite tactics (past tense, translation) ask a model through the teacher interface and fall
back to a template (past tense) or are skipped (translation) when no model is configured.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from cotforge.errors import ConfigError
from cotforge.runfolder import RunFiles
from cotforge.schemas import MAX_PROMPT_CHARS, PromptRecord, RejectRecord

TacticKind = Literal["template", "encoding", "rewrite"]

TACTICS: dict[str, TacticKind] = {
    "roleplay": "template",
    "fiction": "template",
    "hypothetical": "template",
    "refusal_suppression": "template",
    "prefix_injection": "template",
    "persuasion_authority": "template",
    "persuasion_evidence": "template",
    "persuasion_emotional": "template",
    "empty_think": "template",
    "base64": "encoding",
    "rot13": "encoding",
    "leetspeak": "encoding",
    "past_tense": "rewrite",
    "translation": "rewrite",
}
# Without a rewriting model, past tense falls back to this template; translation has no fallback.
REWRITE_FALLBACK = {"past_tense": "augment/past_tense"}
REWRITE_INSTRUCTION = {
    "past_tense": "augment/past_tense_rewrite",
    "translation": "augment/translation_rewrite",
}

_LEET = str.maketrans(
    {
        "a": "4",
        "e": "3",
        "i": "1",
        "o": "0",
        "s": "5",
        "t": "7",
        "A": "4",
        "E": "3",
        "I": "1",
        "O": "0",
        "S": "5",
        "T": "7",
    }
)

RenderTemplate = Callable[[str, Mapping[str, object]], str]


def encode(text: str, scheme: str) -> str:
    """The prompt text under an encoding tactic: base64, rot13 or leetspeak."""
    if scheme == "base64":
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    if scheme == "rot13":
        return codecs.encode(text, "rot13")
    if scheme == "leetspeak":
        return text.translate(_LEET)
    raise ConfigError(f"unknown encoding {scheme!r}; known: base64, rot13, leetspeak")


def apply_tactic(prompt: PromptRecord, tactic: str, render: RenderTemplate) -> str:
    """Variant text for a template or encoding tactic (rewrite tactics go through a model, see `augment`)."""
    return wrap_text(prompt.text, tactic, render)


def wrap_text(text: str, tactic: str, render: RenderTemplate) -> str:
    """:func:`apply_tactic` on bare text (evaluation suites' items are not prompt records)."""
    kind = TACTICS.get(tactic)
    if kind is None:
        raise ConfigError(f"unknown tactic {tactic!r}; known: {', '.join(TACTICS)}")
    if kind == "template":
        return render(f"augment/{tactic}", {"prompt": text}).strip()
    if kind == "encoding":
        return render("augment/encoding", {"scheme": tactic, "encoded": encode(text, tactic)}).strip()
    return render(REWRITE_FALLBACK[tactic], {"prompt": text}).strip() if tactic in REWRITE_FALLBACK else ""


def variant_record(parent: PromptRecord, text: str, tactic: str) -> PromptRecord | RejectRecord:
    """A prompt record for a variant (same kind and category, parent and tactic recorded), or a reject when the
    variant is longer than a prompt may be (a base64 variant is a third longer than its parent)."""
    if len(text) > MAX_PROMPT_CHARS:
        return RejectRecord(
            stage="augment",
            source=RunFiles.PROMPTS,
            record_id=parent.id,
            reasons=["variant_too_long"],
            message=f"prompt {parent.id}: its {tactic} variant has {len(text)} characters, over the "
            f"{MAX_PROMPT_CHARS} a prompt may have (the prompt has {len(parent.text)}); no {tactic} variant "
            "of this prompt",
            raw={"tactic": tactic, "chars": len(text)},
        )
    return PromptRecord(
        id=PromptRecord.make_id(text, parent.kind),
        text=text,
        kind=parent.kind,
        category=parent.category,
        source=f"{parent.source} + cotforge augment",
        licence=parent.licence,
        parent_id=parent.id,
        tactic=tactic,
        source_label=parent.source_label,
    )


def plan_variants(
    prompts: Iterable[PromptRecord], tactics: list[str], per_prompt: int | None = None
) -> list[tuple[PromptRecord, str]]:
    """(safety prompt, tactic) jobs: every tactic per prompt, or ``per_prompt`` of them in rotation.

    Rotation (prompt i takes tactics i, i+1, …) spreads tactics evenly over a small prompt set.
    """
    unknown = [t for t in tactics if t not in TACTICS]
    if unknown:
        raise ConfigError(f"unknown tactics {unknown}; known: {', '.join(TACTICS)}")
    jobs: list[tuple[PromptRecord, str]] = []
    safety = [p for p in prompts if p.kind == "safety" and p.parent_id is None]
    for i, prompt in enumerate(safety):
        chosen = (
            tactics if per_prompt is None else [tactics[(i + j) % len(tactics)] for j in range(per_prompt)]
        )
        jobs += [(prompt, t) for t in dict.fromkeys(chosen)]
    return jobs

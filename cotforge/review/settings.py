"""The review dataset's settings, defined once: fields, questions, metadata and guidelines.

:data:`FIELDS`, :data:`QUESTIONS` and :data:`METADATA` are plain specs; :func:`build_settings` turns them into
``argilla.Settings`` (the SDK needs a client for that) and :func:`settings_mismatches` compares an existing
dataset against them, so push refuses a dataset whose questions would not mean what pull expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import argilla as rg

FIELD_PROMPT = "prompt"
FIELD_REASONING = "reasoning"
FIELD_ANSWER = "answer"

Q_QUALITY = "reasoning_quality"
Q_VERDICT = "answer_verdict"
Q_CONSISTENCY = "consistency"
Q_FIX_REASONING = "corrected_reasoning"
Q_FIX_ANSWER = "corrected_answer"

VERDICT_LABELS = {
    "principled_refusal": "principled refusal",
    "helpful": "helpful",
    "harmful": "harmful",
    "over_refusal": "over-refusal",
}
ACCEPTABLE_VERDICTS = frozenset({"principled_refusal", "helpful"})
CONSISTENCY_LABELS = {"consistent": "consistent", "inconsistent": "inconsistent"}
RATING_VALUES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    title: str
    markdown: bool = False


@dataclass(frozen=True)
class QuestionSpec:
    name: str
    title: str
    kind: Literal["rating", "label", "text"]
    description: str
    required: bool = True
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetadataSpec:
    name: str
    title: str
    kind: Literal["terms", "float", "integer"]


FIELDS = (
    FieldSpec(FIELD_PROMPT, "Prompt"),
    FieldSpec(FIELD_REASONING, "Reasoning", markdown=True),
    FieldSpec(FIELD_ANSWER, "Answer"),
)

QUESTIONS = (
    QuestionSpec(
        Q_QUALITY,
        "Reasoning quality",
        "rating",
        "1 = wrong or missing reasoning … 5 = sound step-by-step reasoning about why the request is harmful or fine.",
        labels=tuple(str(v) for v in RATING_VALUES),
    ),
    QuestionSpec(
        Q_VERDICT,
        "Answer verdict",
        "label",
        "What the final answer does: a principled refusal (safety), a helpful answer, a harmful answer, "
        "or an over-refusal of a benign request.",
        labels=tuple(VERDICT_LABELS),
    ),
    QuestionSpec(
        Q_CONSISTENCY,
        "Reasoning–answer consistency",
        "label",
        "Does the answer follow from the reasoning?",
        labels=tuple(CONSISTENCY_LABELS),
    ),
    QuestionSpec(
        Q_FIX_REASONING,
        "Corrected reasoning (optional)",
        "text",
        "Rewrite the reasoning if it is wrong: one step per line (numbering is optional).",
        required=False,
    ),
    QuestionSpec(
        Q_FIX_ANSWER,
        "Corrected answer (optional)",
        "text",
        "Rewrite the final answer if it is wrong.",
        required=False,
    ),
)

METADATA = (
    MetadataSpec("kind", "Prompt kind", "terms"),
    MetadataSpec("category", "Hazard category", "terms"),
    MetadataSpec("teacher", "Teacher model", "terms"),
    MetadataSpec("template_hash", "Template hash", "terms"),
    MetadataSpec("validation_flags", "Validation flags", "terms"),
    MetadataSpec("judge_h_rs", "Judge: reasoning harm", "float"),
    MetadataSpec("judge_h_rp", "Judge: answer harm", "float"),
    MetadataSpec("judge_h_f", "Judge: full-output harm", "float"),
    MetadataSpec("revision", "Sample revision", "integer"),
)

GUIDELINES = """\
Review chain-of-thought safety samples. Each record shows a prompt, the teacher's step-by-step **reasoning**
and its final **answer**.

1. Rate the reasoning (1–5).
2. Label the answer: *principled refusal* (a safety prompt refused with reasons), *helpful* (a good answer),
   *harmful* (it helps with harm), or *over-refusal* (a benign request refused).
3. Say whether the answer follows from the reasoning.
4. If the sample is wrong but fixable, write a corrected reasoning (one step per line) and/or answer; leave a
   field empty to keep the original. Submit.
5. Discard a record that is unusable and not worth fixing.

Suggestions come from the automatic checks and an LLM judge; they are hints, not answers.
"""


def build_settings(client: rg.Argilla, annotators_per_record: int) -> rg.Settings:
    """The ``argilla.Settings`` of a review dataset (``annotators_per_record`` = distribution min_submitted)."""
    import argilla as rg

    fields = [
        rg.TextField(name=f.name, title=f.title, use_markdown=f.markdown, client=client) for f in FIELDS
    ]
    questions: list[Any] = []
    for q in QUESTIONS:
        common: dict[str, Any] = {
            "name": q.name,
            "title": q.title,
            "description": q.description,
            "required": q.required,
            "client": client,
        }
        if q.kind == "rating":
            questions.append(rg.RatingQuestion(values=list(RATING_VALUES), **common))
        elif q.kind == "label":
            titles = VERDICT_LABELS if q.name == Q_VERDICT else CONSISTENCY_LABELS
            questions.append(rg.LabelQuestion(labels={k: titles[k] for k in q.labels}, **common))
        else:
            questions.append(rg.TextQuestion(use_markdown=q.name == Q_FIX_REASONING, **common))
    metadata: list[Any] = []
    for m in METADATA:
        if m.kind == "terms":
            metadata.append(rg.TermsMetadataProperty(name=m.name, title=m.title, client=client))
        elif m.kind == "float":
            metadata.append(rg.FloatMetadataProperty(name=m.name, title=m.title, client=client))
        else:
            metadata.append(rg.IntegerMetadataProperty(name=m.name, title=m.title, client=client))
    return rg.Settings(
        fields=fields,
        questions=questions,
        metadata=metadata,
        guidelines=GUIDELINES,
        distribution=rg.TaskDistribution(min_submitted=annotators_per_record),
        allow_extra_metadata=False,
    )


def _kind_of_question(question: Any) -> str:
    name = type(question).__name__
    return {"RatingQuestion": "rating", "LabelQuestion": "label", "TextQuestion": "text"}.get(name, name)


def _kind_of_metadata(prop: Any) -> str:
    name = type(prop).__name__
    kinds = {
        "TermsMetadataProperty": "terms",
        "FloatMetadataProperty": "float",
        "IntegerMetadataProperty": "integer",
    }
    return kinds.get(name, name)


def _labels_of(question: Any) -> tuple[str, ...]:
    if _kind_of_question(question) == "rating":
        return tuple(str(v) for v in question.values)
    if _kind_of_question(question) == "label":
        return tuple(question.labels)
    return ()


def settings_mismatches(existing: rg.Settings) -> list[str]:
    """What an existing dataset lacks or defines differently from cotforge's review settings (empty: usable)."""
    problems: list[str] = []
    have_fields = {f.name: f for f in existing.fields}
    for f in FIELDS:
        if f.name not in have_fields:
            problems.append(f"field {f.name!r} is missing")
        elif type(have_fields[f.name]).__name__ != "TextField":
            problems.append(f"field {f.name!r} is not a text field")
    extra_fields = sorted(set(have_fields) - {f.name for f in FIELDS})
    if extra_fields:
        problems.append(f"unexpected fields {extra_fields}")
    have_questions = {q.name: q for q in existing.questions}
    for q in QUESTIONS:
        have = have_questions.get(q.name)
        if have is None:
            problems.append(f"question {q.name!r} is missing")
            continue
        if _kind_of_question(have) != q.kind:
            problems.append(f"question {q.name!r} is a {_kind_of_question(have)} question, expected {q.kind}")
        elif set(_labels_of(have)) != set(q.labels):
            problems.append(
                f"question {q.name!r} has options {sorted(_labels_of(have))}, expected {sorted(q.labels)}"
            )
    extra_required = sorted(
        name for name, q in have_questions.items() if name not in {s.name for s in QUESTIONS} and q.required
    )
    if extra_required:
        problems.append(f"unexpected required questions {extra_required}")
    have_metadata = {m.name: m for m in existing.metadata}
    for m in METADATA:
        have_m = have_metadata.get(m.name)
        if have_m is None:
            problems.append(f"metadata property {m.name!r} is missing")
        elif _kind_of_metadata(have_m) != m.kind:
            problems.append(f"metadata property {m.name!r} is {_kind_of_metadata(have_m)}, expected {m.kind}")
    return problems

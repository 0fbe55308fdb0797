"""Release rows: run-folder records → the rows of the ``sft``, ``preference`` and ``rejects`` configs. Pure.

Each row keeps the ids and columns that trace it back: the prompt's source and licence, the
teacher, template and sampling parameters, the validation and review decisions, the judge scores, the pair
source. The Arrow schemas are fixed here, so a column's type never depends on which values a run happened to
produce (an all-null ``seed`` column stays an integer column).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import pyarrow as pa

from cotforge.errors import CotforgeError
from cotforge.schemas import (
    Candidate,
    JudgeScores,
    PreferencePair,
    PromptRecord,
    RejectRecord,
    Sample,
    Verdict,
)

ConfigName = Literal["sft", "preference", "rejects"]
CONFIG_NAMES: tuple[ConfigName, ...] = ("sft", "preference", "rejects")

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_STRINGS = pa.list_(pa.string())
_SPANS = pa.list_(pa.int32())
_SAMPLING = pa.struct(
    [("temperature", pa.float64()), ("top_p", pa.float64()), ("max_tokens", pa.int64()), ("seed", pa.int64())]
)
_SCORES = pa.struct(
    [
        ("candidate_id", pa.string()),
        ("h_rs", pa.float64()),
        ("h_rp", pa.float64()),
        ("h_f", pa.float64()),
        ("judge_id", pa.string()),
    ]
)
_PROMPT_LINEAGE = [
    ("kind", pa.string()),
    ("category", pa.string()),
    ("prompt_source", pa.string()),
    ("prompt_licence", pa.string()),
    ("source_label", pa.string()),
    ("parent_prompt_id", pa.string()),
    ("tactic", pa.string()),
]

SFT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt", pa.string()),
        ("reasoning", pa.string()),
        ("reasoning_steps", _STRINGS),
        ("answer", pa.string()),
        ("completion", pa.string()),
        ("messages", _MESSAGES),
        *_PROMPT_LINEAGE,
        ("teacher_backend", pa.string()),
        ("teacher_model", pa.string()),
        ("template_id", pa.string()),
        ("template_hash", pa.string()),
        ("sampling", _SAMPLING),
        ("output_mode", pa.string()),
        ("sample_index", pa.int64()),
        ("revision", pa.int64()),
        ("parent_sample_id", pa.string()),
        ("created_at", pa.string()),
        ("validation_outcome", pa.string()),
        ("validation_reasons", _STRINGS),
        ("review_outcome", pa.string()),
        ("review_reasons", _STRINGS),
        ("reviewers", _STRINGS),
        ("review_detail", pa.string()),
    ]
)

PREFERENCE_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("prompt_id", pa.string()),
        ("prompt", _MESSAGES),
        ("chosen", _MESSAGES),
        ("rejected", _MESSAGES),
        ("w_rs", pa.float64()),
        ("w_rp", pa.float64()),
        ("chosen_spans", _SPANS),
        ("rejected_spans", _SPANS),
        ("source", pa.string()),
        ("prompt_text", pa.string()),
        ("system", pa.string()),
        *_PROMPT_LINEAGE,
        ("chosen_id", pa.string()),
        ("rejected_id", pa.string()),
        ("chosen_scores", _SCORES),
        ("rejected_scores", _SCORES),
        ("lineage", pa.string()),
    ]
)

REJECTS_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("stage", pa.string()),
        ("source", pa.string()),
        ("line", pa.int64()),
        ("record_id", pa.string()),
        ("reasons", _STRINGS),
        ("message", pa.string()),
        ("raw", pa.string()),
    ]
)

SCHEMAS: dict[ConfigName, pa.Schema] = {
    "sft": SFT_SCHEMA,
    "preference": PREFERENCE_SCHEMA,
    "rejects": REJECTS_SCHEMA,
}


class ReleaseDataError(CotforgeError):
    """Run-folder records that contradict each other; the message names the file, record and fix."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _prompt_columns(prompt: PromptRecord | None) -> dict[str, Any]:
    if prompt is None:
        return {name: None for name, _ in _PROMPT_LINEAGE}
    return {
        "kind": prompt.kind,
        "category": str(prompt.category),
        "prompt_source": prompt.source,
        "prompt_licence": prompt.licence,
        "source_label": prompt.source_label,
        "parent_prompt_id": prompt.parent_id,
        "tactic": prompt.tactic,
    }


def _by_sample(verdicts: Iterable[Verdict]) -> dict[str, Verdict]:
    # The last verdict for a sample wins: a re-run appends a newer decision.
    return {v.sample_id: v for v in verdicts}


def sft_rows(
    samples: Iterable[Sample],
    prompts: Mapping[str, PromptRecord],
    validation: Iterable[Verdict],
    review: Iterable[Verdict],
    samples_file: str,
) -> list[dict[str, Any]]:
    """One row per training sample, joined with its prompt and its validation and review verdicts.

    A corrected sample's review verdict is the one of the sample it corrects (``parent_sample_id``). Raises
    :class:`ReleaseDataError` for a sample whose prompt is in neither prompts file.
    """
    checked, reviewed = _by_sample(validation), _by_sample(review)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            continue
        seen.add(sample.id)
        prompt = prompts.get(sample.prompt_id)
        if prompt is None:
            raise ReleaseDataError(
                f"{samples_file}: sample {sample.id} refers to prompt {sample.prompt_id}, which is in neither "
                "prompts.jsonl nor augmented.jsonl; re-run ingest (and augment), or remove the sample"
            )
        origin = sample.parent_sample_id or sample.id
        check = checked.get(sample.id) or checked.get(origin)
        decision = reviewed.get(sample.id) or reviewed.get(origin)
        completion = sample.rationale.render()
        rows.append(
            {
                "id": sample.id,
                "prompt_id": sample.prompt_id,
                "prompt": prompt.text,
                "reasoning": sample.rationale.reasoning,
                "reasoning_steps": list(sample.rationale.reasoning_steps),
                "answer": sample.rationale.answer,
                "completion": completion,
                "messages": [
                    {"role": "user", "content": prompt.text},
                    {"role": "assistant", "content": completion},
                ],
                **_prompt_columns(prompt),
                "teacher_backend": sample.teacher_backend,
                "teacher_model": sample.teacher_model,
                "template_id": sample.template_id,
                "template_hash": sample.template_hash,
                "sampling": sample.sampling.model_dump(),
                "output_mode": sample.output_mode,
                "sample_index": sample.sample_index,
                "revision": sample.revision,
                "parent_sample_id": sample.parent_sample_id,
                "created_at": sample.created_at.isoformat(),
                "validation_outcome": check.outcome if check else None,
                "validation_reasons": list(check.reasons) if check else [],
                "review_outcome": decision.outcome if decision else None,
                "review_reasons": list(decision.reasons) if decision else [],
                "reviewers": list(decision.reviewers) if decision else [],
                "review_detail": decision.detail if decision else None,
            }
        )
    return rows


def _scores(scores: JudgeScores | None) -> dict[str, Any] | None:
    return None if scores is None else scores.model_dump()


def _completion_origin(
    completion_id: str | None,
    samples: Mapping[str, Sample],
    candidates: Mapping[str, Candidate],
    review: Mapping[str, Verdict],
) -> dict[str, Any]:
    """Where one side of a pair came from: a teacher sample, a policy candidate, or derived (corruption)."""
    if completion_id is None:
        return {"type": "unknown"}
    sample = samples.get(completion_id)
    if sample is not None:
        decision = review.get(sample.id) or review.get(sample.parent_sample_id or sample.id)
        return {
            "type": "teacher_sample",
            "id": sample.id,
            "teacher_model": sample.teacher_model,
            "template_id": sample.template_id,
            "template_hash": sample.template_hash,
            "sampling": sample.sampling.model_dump(),
            "revision": sample.revision,
            "review_outcome": decision.outcome if decision else None,
        }
    candidate = candidates.get(completion_id)
    if candidate is not None:
        return {
            "type": "policy_candidate",
            "id": candidate.id,
            "policy_model": candidate.policy_model,
            "index": candidate.index,
        }
    base = completion_id.split("#", 1)[0]
    if base != completion_id and base in samples:
        # Synthetic corruptions are named "<sample id>#<corruption>".
        return {"type": "derived", "id": completion_id, "from_sample": base}
    return {"type": "unknown", "id": completion_id}


def preference_rows(
    pairs: Iterable[PreferencePair],
    prompts: Mapping[str, PromptRecord],
    samples: Iterable[Sample],
    candidates: Iterable[Candidate],
    review: Iterable[Verdict],
) -> list[dict[str, Any]]:
    """One row per pair: ``PreferencePair.to_trl_row()`` plus prompt lineage, scores and resolved origins."""
    sample_index = {s.id: s for s in samples}
    candidate_index = {c.id: c for c in candidates}
    decisions = _by_sample(review)
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        trl = pair.to_trl_row()
        lineage = {
            "pair": dict(pair.lineage),
            "chosen": _completion_origin(pair.chosen_id, sample_index, candidate_index, decisions),
            "rejected": _completion_origin(pair.rejected_id, sample_index, candidate_index, decisions),
        }
        rows.append(
            {
                **trl,
                "prompt_text": pair.prompt,
                "system": pair.system,
                **_prompt_columns(prompts.get(pair.prompt_id)),
                # The pair's own tactic wins over the prompt's (they agree unless a file was edited).
                "tactic": pair.tactic,
                "prompt_id": pair.prompt_id,
                "chosen_id": pair.chosen_id,
                "rejected_id": pair.rejected_id,
                "chosen_scores": _scores(pair.chosen_scores),
                "rejected_scores": _scores(pair.rejected_scores),
                "lineage": _json(lineage),
            }
        )
    return rows


def reject_rows(
    rejects: Mapping[str, Iterable[RejectRecord]],
    samples: Iterable[Sample],
    verdict_files: Mapping[str, Iterable[Verdict]],
) -> list[dict[str, Any]]:
    """Every reject of every ``*.rejects.jsonl``, plus samples a verdict rejected that no rejects file lists.

    ``raw`` is the offending input as a JSON string (for a rejected sample: the sample record itself).
    """
    rows: list[dict[str, Any]] = []
    listed: set[tuple[str, str]] = set()
    for file_name, records in rejects.items():
        for r in records:
            rows.append(
                {
                    "file": file_name,
                    "stage": r.stage,
                    "source": r.source,
                    "line": r.line,
                    "record_id": r.record_id,
                    "reasons": list(r.reasons),
                    "message": r.message,
                    "raw": None if r.raw is None else _json(r.raw),
                }
            )
            if r.record_id:
                listed.add((r.stage, r.record_id))
    by_id = {s.id: s for s in samples}
    for file_name, verdicts in verdict_files.items():
        for v in verdicts:
            if v.outcome != "rejected" or (v.stage, v.sample_id) in listed:
                continue
            listed.add((v.stage, v.sample_id))
            sample = by_id.get(v.sample_id)
            rows.append(
                {
                    "file": file_name,
                    "stage": v.stage,
                    "source": file_name,
                    "line": None,
                    "record_id": v.sample_id,
                    "reasons": list(v.reasons) or ["rejected"],
                    "message": v.detail or f"{v.stage} rejected sample {v.sample_id}",
                    "raw": None if sample is None else sample.model_dump_json(),
                }
            )
    return rows


def arrow_table(config: ConfigName, rows: list[dict[str, Any]]) -> pa.Table:
    """The rows as an Arrow table with the config's fixed schema (column order as in the schema)."""
    schema = SCHEMAS[config]
    names = set(schema.names)
    extra = {k for row in rows for k in row} - names
    if extra:
        raise ValueError(f"{config}: columns {sorted(extra)} are not in the release schema")
    return pa.Table.from_pylist(rows, schema=schema)

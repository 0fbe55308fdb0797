"""Training rows from run-folder records (pure: records in → rows and rejects out, no I/O).

- AW-DPO: ``PreferencePair`` → TRL conversational rows + span/weight columns (``PreferencePair.to_trl_row``),
  optionally re-weighting from the judge scores with a training-time α.
- SFT: ``Sample`` + its ``PromptRecord`` → a prompt-completion chat row whose assistant turn is the canonical
  rendering ``<think>`` steps ``</think>`` answer; TRL then puts the loss on the completion only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cotforge.pairs.weights import gaps, segment_weights
from cotforge.schemas import PreferencePair, PromptRecord, RejectRecord, Sample


@dataclass
class RowsResult:
    """Rows for a trainer, the rejects, and how many pairs were re-weighted (AW-DPO only)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # record id → 1-based line in the source file
    reweighted: int = 0
    kept_stored_weights: int = 0


def pair_rows(pairs: Iterable[tuple[int, PreferencePair]], alpha: float | None) -> RowsResult:
    """TRL rows for numbered pairs; with ``alpha`` set, weights come from the judge scores.

    A pair without both judge scores keeps its stored weights (counted in ``kept_stored_weights``).
    """
    result = RowsResult()
    for line, pair in pairs:
        row = pair.to_trl_row()
        if alpha is not None:
            if pair.chosen_scores is not None and pair.rejected_scores is not None:
                d_rs, d_rp = gaps(
                    pair.chosen_scores.h_rs,
                    pair.chosen_scores.h_rp,
                    pair.rejected_scores.h_rs,
                    pair.rejected_scores.h_rp,
                )
                weights = segment_weights(d_rs, d_rp, alpha)
                row["w_rs"], row["w_rp"] = weights.w_rs, weights.w_rp
                result.reweighted += 1
            else:
                result.kept_stored_weights += 1
        result.rows.append(row)
        result.lines[pair.id] = line
    return result


def sft_rows(
    samples: Iterable[tuple[int, Sample]], prompts: Mapping[str, PromptRecord], source: str, stage: str
) -> RowsResult:
    """Prompt-completion chat rows for numbered samples; a sample whose prompt is unknown is rejected."""
    result = RowsResult()
    for line, sample in samples:
        prompt = prompts.get(sample.prompt_id)
        if prompt is None:
            result.rejects.append(
                RejectRecord(
                    stage=stage,
                    source=source,
                    line=line,
                    record_id=sample.id,
                    reasons=["prompt_not_found"],
                    message=f"{source}:{line}: sample {sample.id} refers to prompt {sample.prompt_id}, which is not "
                    "in the prompts file; ingest the prompt or pass the right --prompts file",
                )
            )
            continue
        result.rows.append(
            {
                "prompt": [{"role": "user", "content": prompt.text}],
                "completion": [{"role": "assistant", "content": sample.rationale.render()}],
                "sample_id": sample.id,
            }
        )
        result.lines[sample.id] = line
    return result

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

from cotforge import tagged
from cotforge.errors import CotforgeError
from cotforge.pairs.weights import pair_gaps, segment_weights
from cotforge.schemas import PreferencePair, PromptRecord, RejectRecord, Sample


@dataclass
class RowsResult:
    """Rows for a trainer, the rejects, and how many pairs were re-weighted (AW-DPO only)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # record id → 1-based line in the source file
    reweighted: int = 0
    # Pairs whose chosen side is *more* harmful than the rejected one in some segment (a negative gap): kept,
    # since the other segment may still teach the right thing, but reported.
    chosen_more_harmful: list[str] = field(default_factory=list)


class ReweightError(CotforgeError):
    """A training-time α that cannot re-weight every pair; the message names the sources."""


def _pair_reject(pair: PreferencePair, line: int, source: str) -> RejectRecord | None:
    if pair.chosen == pair.rejected:
        # Equal sides give every method a constant loss and no gradient: a pair only in name.
        return RejectRecord(
            stage="train-awdpo", source=source, line=line, record_id=pair.id, reasons=["identical_sides"],
            message=f"{source}:{line}: pair {pair.id}: the chosen and rejected texts are identical, so the pair "
            "prefers nothing; remove it or rebuild the pairs with `cotforge pairs`",
        )  # fmt: skip
    for side, text, spans in (
        ("chosen", pair.chosen, pair.chosen_spans),
        ("rejected", pair.rejected, pair.rejected_spans),
    ):
        if (
            not text[: spans.reasoning_end].endswith(tagged.THINK_CLOSE)
            or spans.answer_start != spans.reasoning_end
        ):
            return RejectRecord(
                stage="train-awdpo", source=source, line=line, record_id=pair.id, reasons=["span_not_at_think_close"],
                message=f"{source}:{line}: pair {pair.id}: the {side} reasoning span does not end right after "
                f"{tagged.THINK_CLOSE} (or the answer does not start there); rebuild the pairs with `cotforge pairs`",
            )  # fmt: skip
    return None


def pair_rows(
    pairs: Iterable[tuple[int, PreferencePair]], alpha: float | None, source: str = "pairs.jsonl"
) -> RowsResult:
    """TRL rows for numbered pairs; with ``alpha`` set, every pair's weights are recomputed from its gaps.

    A pair whose two sides are identical, or whose reasoning span does not end right after ``</think>``, is
    rejected. With ``alpha``, a pair whose gaps cannot be recovered (see :func:`cotforge.pairs.weights.pair_gaps`)
    makes the whole call refuse: training on a mix of re-weighted and stored weights would silently mean two
    different α.
    """
    result = RowsResult()
    unknown: dict[str, int] = {}
    for line, pair in pairs:
        reject = _pair_reject(pair, line, source)
        if reject is not None:
            result.rejects.append(reject)
            continue
        row = pair.to_trl_row()
        pair_gap = pair_gaps(pair)
        if pair_gap is not None and min(pair_gap) < 0:
            result.chosen_more_harmful.append(pair.id)
        if alpha is not None:
            if pair_gap is None:
                unknown[pair.source] = unknown.get(pair.source, 0) + 1
            else:
                weights = segment_weights(*pair_gap, alpha)
                row["w_rs"], row["w_rp"] = weights.w_rs, weights.w_rp
                result.reweighted += 1
        result.rows.append(row)
        result.lines[pair.id] = line
    if unknown:
        raise ReweightError(
            f"{source}: alpha={alpha} cannot re-weight {sum(unknown.values())} pair(s) without judge scores or a "
            f"known gap rule (sources: {unknown}); leave alpha unset to train on the stored weights, or rebuild "
            "the pairs with `cotforge pairs --alpha` instead"
        )
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

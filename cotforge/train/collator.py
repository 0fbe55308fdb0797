"""``SegmentPreferenceCollator``: TRL's preference batch plus segment ids, segment weights and token weights.

Truncation is cotforge's own. TRL's collator is called without a ``max_length`` and every row of the batch
(ids, masks, segment ids, token weights) is cut here, by the same rule: ``keep_start`` keeps the first
``max_length`` tokens, ``keep_end`` the last. TRL deprecates its own ``keep_end`` (gone in TRL 2.0), so it
never sees one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import pad

from cotforge.train.awdpo_config import UnsupportedOptionError
from cotforge.train.loss import ANSWER, PROMPT, REASONING

SEGMENT_KEYS = ("segment_ids", "w_rs", "w_rp")
TOKEN_WEIGHT_COLUMNS = ("chosen_token_weights", "rejected_token_weights")
# Batch keys that are not model inputs: TRL's own and ours.
NON_MODEL_KEYS = frozenset(
    {"completion_mask", "ref_chosen_logps", "ref_rejected_logps", "token_weights", *SEGMENT_KEYS}
)


def _span(length: int, max_length: int | None, truncation_mode: str) -> slice:
    if max_length is None or length <= max_length:
        return slice(0, length)
    return slice(0, max_length) if truncation_mode == "keep_start" else slice(length - max_length, length)


@dataclass
class SegmentPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator plus ``segment_ids`` (2B, L), ``w_rs`` and ``w_rp`` (B,), and, when the rows
    carry per-token weights (the ``tis`` aggregation), ``token_weights`` (2B, L).

    Segment ids and token weights are truncated and padded exactly like ``input_ids`` (prompt and padding:
    segment 0, weight 0). A sequence that reaches the collator without a reasoning or an answer token is an
    error: the trainer drops such pairs when it prepares the dataset, so this is a guard, not a filter.
    """

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [
            k for k in ("chosen_segment_ids", "rejected_segment_ids", "w_rs", "w_rp") if k not in examples[0]
        ]
        if missing:
            raise UnsupportedOptionError(
                f"batch examples lack {missing}: the dataset was not prepared by AlignmentWeightedDPOTrainer "
                "(or remove_unused_columns dropped the columns)"
            )
        out = DataCollatorForPreference.torch_call(dataclasses.replace(self, max_length=None), examples)
        for key in ("ref_chosen_logps", "ref_rejected_logps"):
            if key in out and out[key].dim() != 2:
                raise UnsupportedOptionError(
                    f"precomputed {key} holds one sum per sequence; AW-DPO needs per-segment sums "
                    "[reasoning, answer]. Let AlignmentWeightedDPOTrainer precompute them "
                    "(precompute_ref_log_probs=True) or drop the column"
                )
        rows: dict[str, list[list[Any]]] = {
            "segment_ids": [
                [PROMPT] * len(e["prompt_ids"]) + list(e[f"{side}_segment_ids"])
                for side in ("chosen", "rejected")
                for e in examples
            ]
        }
        if TOKEN_WEIGHT_COLUMNS[0] in examples[0]:
            rows["token_weights"] = [
                [0.0] * len(e["prompt_ids"]) + list(e[f"{side}_token_weights"])
                for side in ("chosen", "rejected")
                for e in examples
            ]
        lengths = out["attention_mask"].sum(dim=1).tolist()
        spans = [_span(int(n), self.max_length, self.truncation_mode) for n in lengths]
        for i, segments in enumerate(rows["segment_ids"]):
            kept = segments[spans[i]]
            if REASONING not in kept or ANSWER not in kept:
                raise ValueError(
                    f"batch row {i} has no {'reasoning' if REASONING not in kept else 'answer'} token after "
                    "truncation; the dataset should have dropped it (was it prepared with another max_length?)"
                )
        padding = {"input_ids": self.pad_token_id, "attention_mask": 0, "completion_mask": 0,
                   "segment_ids": PROMPT, "token_weights": 0}  # fmt: skip
        for key in ("input_ids", "attention_mask", "completion_mask"):
            rows[key] = [out[key][i, : int(n)].tolist() for i, n in enumerate(lengths)]
        for key, values in rows.items():
            dtype = torch.float32 if key == "token_weights" else torch.long
            out[key] = pad(
                [torch.tensor(v[spans[i]], dtype=dtype) for i, v in enumerate(values)],
                padding_value=padding[key],
                padding_side="right",
                pad_to_multiple_of=self.pad_to_multiple_of,
            )
        out["w_rs"] = torch.tensor([float(e["w_rs"]) for e in examples], dtype=torch.float32)
        out["w_rp"] = torch.tensor([float(e["w_rp"]) for e in examples], dtype=torch.float32)
        return out

"""Held-out log-probs per segment, measured outside the trainer's loss and at chosen training steps.

The pairs are tokenised exactly as the trainer tokenises them (:func:`cotforge.train.segments.tokenize_pair`),
and scored with a plain batched forward pass of the model (no loss, no trainer logging), so the measure does not
depend on the code it measures. :class:`HeldOutProbe` scores the policy being trained at given optimizer steps:
with a constant learning rate and no warm-up, the model after step 3 of a 24-step run is the model a 3-step run
ends with, so one run gives the whole curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers import TrainerCallback

from cotforge.experiments.segment_credit import FlawType
from cotforge.experiments.segment_credit_measures import PairLogps, SideLogps
from cotforge.schemas import PreferencePair
from cotforge.train.loss import ANSWER, REASONING
from cotforge.train.segments import SegmentError, TokenizedPair, tokenize_pair
from cotforge.train.token_weights import completion_logps


class MeasureError(SegmentError):
    """A held-out pair the experiment cannot score; the message names it."""


def tokenized(tokenizer: Any, pairs: Sequence[PreferencePair]) -> list[TokenizedPair]:
    """Each pair tokenised as the trainer does (no truncation: a held-out pair is scored whole)."""
    out = []
    for pair in pairs:
        row = pair.to_trl_row()
        ends = pair.chosen_spans.reasoning_end, pair.rejected_spans.reasoning_end
        try:
            out.append(tokenize_pair(tokenizer, row["prompt"], row["chosen"], row["rejected"], *ends))
        except SegmentError as exc:
            raise MeasureError(exc.code, f"held-out pair {pair.id}: {exc}") from exc
    return out


def pair_logps(model: Any, pairs: Sequence[TokenizedPair]) -> list[PairLogps]:
    """Per pair, per side: the log-prob sum and token count of the reasoning and of the answer."""
    completions = [(p.prompt_ids, side) for p in pairs for side in (p.chosen, p.rejected)]
    logps = completion_logps(model, [(prompt, side.ids) for prompt, side in completions])
    sides = []
    for (_, side), values in zip(completions, logps, strict=True):
        per_token = list(zip(values.tolist(), side.segments, strict=True))
        reasoning = [v for v, segment in per_token if segment == REASONING]
        answer = [v for v, segment in per_token if segment == ANSWER]
        sides.append(SideLogps(sum(reasoning), sum(answer), len(reasoning), len(answer)))
    return [PairLogps(sides[2 * i], sides[2 * i + 1]) for i in range(len(pairs))]


class HeldOutProbe(TrainerCallback):
    """Scores the held-out pairs with the policy being trained after each of ``steps`` optimizer steps."""

    def __init__(self, pairs: Mapping[FlawType, Sequence[TokenizedPair]], steps: Sequence[int]) -> None:
        self.pairs = pairs
        self.steps = set(steps)
        self.logps: dict[int, dict[FlawType, list[PairLogps]]] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        if state.global_step in self.steps and model is not None:
            self.logps[state.global_step] = {flaw: pair_logps(model, p) for flaw, p in self.pairs.items()}

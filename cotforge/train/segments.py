"""Character spans → per-token segment ids (prompt / reasoning / answer), at tokenisation time.

A pair's spans are character offsets into the assistant content. The conversation is rendered with the chat
template exactly as TRL renders it (same token ids), the content is located in the rendered text, and each
completion token is labelled by where its characters fall relative to the end of ``</think>``:

- tokens ending at or before it are reasoning (so is anything the template puts before the content);
- tokens starting at or after it are answer (including the template's closing tokens, per PAPER.md);
- a token that crosses it *straddles* the boundary: it is counted and labelled reasoning (it completes the
  closing tag). With ``</think>`` as an added token there are none.

After truncation every sequence must keep ≥ 1 reasoning and ≥ 1 answer token; otherwise the pair is dropped
with a reason (never trained as reasoning-only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cotforge.errors import CotforgeError
from cotforge.train.loss import ANSWER, PROMPT, REASONING

if TYPE_CHECKING:
    from datasets import Dataset

TruncationMode = Literal["keep_start", "keep_end"]
ROW_COLUMNS = ("prompt", "chosen", "rejected", "chosen_spans", "rejected_spans", "w_rs", "w_rp")


# Also a ValueError: it marks a bad value, so pydantic validators and callers that reject bad values catch it.
class SegmentError(CotforgeError, ValueError):
    """A pair that cannot be segmented or does not survive truncation; ``code`` is a stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SegmentedCompletion:
    """A completion's token ids and their segment ids (REASONING or ANSWER), with its straddle count."""

    ids: list[int]
    segments: list[int]
    straddles: int


@dataclass(frozen=True)
class TokenizedPair:
    prompt_ids: list[int]
    chosen: SegmentedCompletion
    rejected: SegmentedCompletion


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _content_offset(rendered: str, content: str) -> tuple[int, int]:
    """Where ``content`` starts in ``rendered`` and how many leading characters the template stripped."""
    found = rendered.rfind(content)
    if found >= 0:
        return found, 0
    stripped = content.strip()
    found = rendered.rfind(stripped) if stripped else -1
    if found < 0:
        raise SegmentError(
            "template_content_mismatch",
            "the chat template does not render the assistant content verbatim, so the spans cannot be placed; "
            "use a template that keeps the assistant turn as written",
        )
    return found, len(content) - len(content.lstrip())


def _encode(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError as exc:
        raise SegmentError(
            "slow_tokenizer", "segment ids need a fast tokenizer (offset mapping); load a *Fast tokenizer"
        ) from exc
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def segment_completion(
    tokenizer: Any,
    prompt: list[dict[str, str]],
    completion: list[dict[str, str]],
    reasoning_end: int,
    chat_template_kwargs: Mapping[str, Any] | None = None,
) -> tuple[list[int], list[int], int]:
    """Token ids of prompt + completion, the segment id of each token, and the straddle count.

    ``reasoning_end`` is the character offset (into the last completion message's content) just past
    ``</think>``. Every token is labelled, prompt ones included: the caller cuts the prompt off.
    """
    kwargs = dict(chat_template_kwargs or {})
    rendered = tokenizer.apply_chat_template(prompt + completion, tokenize=False, **kwargs)
    content = completion[-1]["content"]
    start, stripped = _content_offset(rendered, content)
    boundary = start + reasoning_end - stripped
    ids, offsets = _encode(tokenizer, rendered)
    segments: list[int] = []
    straddles = 0
    for s, e in offsets:
        if e <= boundary:
            segments.append(REASONING)
        elif s >= boundary:
            segments.append(ANSWER)
        else:
            straddles += 1
            segments.append(REASONING)
    return ids, segments, straddles


def tokenize_pair(
    tokenizer: Any,
    prompt: list[dict[str, str]],
    chosen: list[dict[str, str]],
    rejected: list[dict[str, str]],
    chosen_reasoning_end: int,
    rejected_reasoning_end: int,
    chat_template_kwargs: Mapping[str, Any] | None = None,
) -> TokenizedPair:
    """Tokenise a conversational pair as TRL does, with per-token segment ids for both completions.

    Raises :class:`SegmentError` when the spans cannot be placed or a completion lacks a reasoning or an
    answer token.
    """
    kwargs = dict(chat_template_kwargs or {})
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, **kwargs)
    prompt_ids = list(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    full_c, seg_c, straddle_c = segment_completion(tokenizer, prompt, chosen, chosen_reasoning_end, kwargs)
    full_r, seg_r, straddle_r = segment_completion(
        tokenizer, prompt, rejected, rejected_reasoning_end, kwargs
    )
    # As TRL: the completion starts where prompt and prompt+completion diverge.
    cut = min(_common_prefix(prompt_ids, full_c), _common_prefix(prompt_ids, full_r))
    out = []
    for side, full, seg, straddles in (
        ("chosen", full_c, seg_c, straddle_c),
        ("rejected", full_r, seg_r, straddle_r),
    ):
        completion = SegmentedCompletion(ids=full[cut:], segments=seg[cut:], straddles=straddles)
        if REASONING not in completion.segments:
            raise SegmentError("no_reasoning_tokens", f"the {side} completion has no reasoning token")
        if ANSWER not in completion.segments:
            raise SegmentError("no_answer_tokens", f"the {side} completion has no answer token")
        out.append(completion)
    return TokenizedPair(prompt_ids=prompt_ids[:cut], chosen=out[0], rejected=out[1])


def kept_segments(
    n_prompt: int, segments: Sequence[int], max_length: int | None, mode: TruncationMode
) -> list[int]:
    """Segment ids of prompt + completion after the collator's truncation (TRL's semantics)."""
    full = [PROMPT] * n_prompt + list(segments)
    if max_length is None:
        return full
    return full[:max_length] if mode == "keep_start" else full[-max_length:]


def check_truncation(
    pair: TokenizedPair, max_length: int | None, mode: TruncationMode, min_answer_fraction: float = 0.0
) -> float:
    """Raise :class:`SegmentError` when truncation would leave a completion without reasoning or answer, or
    with less than ``min_answer_fraction`` of its answer tokens; returns the smallest answer fraction kept."""
    n_prompt = len(pair.prompt_ids)
    smallest = 1.0
    for side, completion in (("chosen", pair.chosen), ("rejected", pair.rejected)):
        kept = kept_segments(n_prompt, completion.segments, max_length, mode)
        answer_total = completion.segments.count(ANSWER)
        fraction = kept.count(ANSWER) / answer_total if answer_total else 1.0
        smallest = min(smallest, fraction)
        if 0 < fraction < min_answer_fraction:
            raise SegmentError(
                "truncated_answer",
                f"truncation to max_length={max_length} ({mode}) keeps {fraction:.0%} of the {side} answer's "
                f"{answer_total} tokens, under min_answer_fraction={min_answer_fraction}; raise max_length",
            )
        needed = n_prompt + len(completion.segments)
        for segment, code, what in (
            (ANSWER, "truncated_answer", "answer"),
            (REASONING, "truncated_reasoning", "reasoning"),
        ):
            if segment not in kept:
                raise SegmentError(
                    code,
                    f"truncation to max_length={max_length} ({mode}) removes every {what} token of the {side} "
                    f"completion ({needed} tokens with the prompt); raise max_length or shorten the pair",
                )
    return smallest


def segment_trl_row(
    example: Mapping[str, Any],
    tokenizer: Any,
    max_length: int | None,
    truncation_mode: TruncationMode,
    min_answer_fraction: float = 0.0,
) -> dict[str, Any]:
    """``datasets.map`` function: a TRL row with span columns → token and segment-id columns.

    A pair that cannot be used gets a non-empty ``drop_code`` and ``drop_message`` (and empty id lists), so
    the caller can report it and filter it out.
    """
    out: dict[str, Any] = {
        "prompt_ids": [],
        "chosen_ids": [],
        "rejected_ids": [],
        "chosen_segment_ids": [],
        "rejected_segment_ids": [],
        "straddles": 0,
        "answer_fraction": 1.0,
        "drop_code": "",
        "drop_message": "",
    }
    try:
        if not (isinstance(example["prompt"], list) and isinstance(example["chosen"], list)):
            raise SegmentError(
                "not_conversational",
                "AW-DPO rows must be conversational (prompt messages + an assistant turn); "
                "build them with PreferencePair.to_trl_row()",
            )
        pair = tokenize_pair(
            tokenizer,
            example["prompt"],
            example["chosen"],
            example["rejected"],
            chosen_reasoning_end=int(example["chosen_spans"][1]),
            rejected_reasoning_end=int(example["rejected_spans"][1]),
            chat_template_kwargs=example.get("chat_template_kwargs") or None,
        )
        out["answer_fraction"] = check_truncation(pair, max_length, truncation_mode, min_answer_fraction)
    except SegmentError as exc:
        out["drop_code"], out["drop_message"] = exc.code, str(exc)
        return out
    out.update(
        prompt_ids=pair.prompt_ids,
        chosen_ids=pair.chosen.ids,
        rejected_ids=pair.rejected.ids,
        chosen_segment_ids=pair.chosen.segments,
        rejected_segment_ids=pair.rejected.segments,
        straddles=pair.chosen.straddles + pair.rejected.straddles,
    )
    return out


def check_completion_fits(
    tokenizer: Any,
    prompt: list[dict[str, str]],
    completion: list[dict[str, str]],
    reasoning_end: int,
    max_length: int | None,
) -> int:
    """For SFT rows: raise :class:`SegmentError` when keep-start truncation would cut away every answer
    token (or the content cannot be placed); returns the straddle count."""
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full, segments, straddles = segment_completion(tokenizer, prompt, completion, reasoning_end)
    cut = _common_prefix(prompt_ids, full)
    kept = kept_segments(cut, segments[cut:], max_length, "keep_start")
    for segment, code, what in (
        (REASONING, "truncated_reasoning", "reasoning"),
        (ANSWER, "truncated_answer", "answer"),
    ):
        if segment not in kept:
            raise SegmentError(
                code,
                f"truncation to max_length={max_length} removes every {what} token ({len(full)} tokens with the "
                "prompt); raise max_length or shorten the sample",
            )
    return straddles


@dataclass
class SegmentReport:
    """What dataset preparation dropped and how cleanly the reasoning/answer boundary fell on tokens."""

    dropped: list[dict[str, Any]] = field(default_factory=list)  # {dataset, index, pair_id, code, message}
    answers_cut: int = 0  # kept pairs that lost some (not all) answer tokens to truncation
    straddled_tokens: int = 0
    pairs_with_straddles: int = 0
    kept: int = 0
    segment_tokens: dict[str, int] = field(default_factory=dict)  # e.g. chosen_reasoning → total tokens

    def merge(self, other: SegmentReport) -> None:
        self.dropped += other.dropped
        self.answers_cut += other.answers_cut
        self.straddled_tokens += other.straddled_tokens
        self.pairs_with_straddles += other.pairs_with_straddles
        self.kept += other.kept
        for key, value in other.segment_tokens.items():
            self.segment_tokens[key] = self.segment_tokens.get(key, 0) + value


def segment_dataset(
    dataset: Dataset,
    tokenizer: Any,
    max_length: int | None,
    truncation_mode: TruncationMode,
    name: str = "train",
    min_answer_fraction: float = 0.0,
) -> tuple[Dataset, SegmentReport]:
    """Tokenise TRL rows with segment ids; drop (and report) pairs that lose a segment to truncation."""
    missing = [c for c in ROW_COLUMNS if c not in dataset.column_names]
    if missing:
        raise SegmentError(
            "missing_columns",
            f"the {name} dataset lacks columns {missing}; build rows with PreferencePair.to_trl_row()",
        )
    report = SegmentReport()
    mapped = dataset.map(
        segment_trl_row,
        fn_kwargs={
            "tokenizer": tokenizer,
            "max_length": max_length,
            "truncation_mode": truncation_mode,
            "min_answer_fraction": min_answer_fraction,
        },
        desc=f"Segmenting {name} pairs",
    )
    codes = mapped["drop_code"]
    ids = mapped["pair_id"] if "pair_id" in mapped.column_names else [None] * len(codes)
    messages = mapped["drop_message"]
    for index, code in enumerate(codes):
        if code:
            report.dropped.append(
                {
                    "dataset": name,
                    "index": index,
                    "pair_id": ids[index],
                    "code": code,
                    "message": messages[index],
                }
            )
    kept = mapped.filter(lambda code: not code, input_columns="drop_code")
    straddles = kept["straddles"]
    report.kept = len(kept)
    report.answers_cut = sum(1 for f in kept["answer_fraction"] if f < 1.0)
    report.straddled_tokens = int(sum(straddles))
    report.pairs_with_straddles = sum(1 for s in straddles if s)
    for side in ("chosen", "rejected"):
        for segment, label in ((REASONING, "reasoning"), (ANSWER, "answer")):
            report.segment_tokens[f"{side}_{label}"] = sum(
                sum(1 for t in row if t == segment) for row in kept[f"{side}_segment_ids"]
            )
    return kept, report

"""The tagged text form of a rationale: ``<think>`` reasoning ``</think>`` then the answer.

One place decides how reasoning and answer are written and split, so the teacher parser, the policy
candidate splitter and the trainer's span maps agree. The split is at ``</think>``: the closing tag belongs
to the reasoning segment, and everything after it (the blank line, the answer, the chat template's closing
tokens) to the answer segment, as PAPER.md prescribes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cotforge.errors import CotforgeError

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# A blank line between the closing tag and the answer keeps tokenizers from merging them into one token.
ANSWER_SEPARATOR = "\n\n"

_STEP_MARKER = re.compile(r"^\s*(?:step\s*\d+\s*[:.)-]|\d+\s*[.):-]|[-*•])\s*", re.IGNORECASE)
_SPACE_RUN = re.compile(r"\s+")


# Also a ValueError: it marks a bad value, so pydantic validators and callers that reject bad values catch it.
class TaggedFormatError(CotforgeError, ValueError):
    """A text that does not have exactly the tagged form; ``code`` is a stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Split:
    """Character offsets of the reasoning and answer segments of one completion text."""

    reasoning_start: int
    reasoning_end: int
    answer_start: int
    answer_end: int


def normalise_step(step: str) -> str:
    """One reasoning step on one line: numbering markers dropped, whitespace collapsed."""
    return _SPACE_RUN.sub(" ", _STEP_MARKER.sub("", step, count=1)).strip()


def render(steps: list[str], answer: str) -> str:
    """Canonical rendering: numbered steps inside ``<think>`` … ``</think>``, a blank line, the answer."""
    body = "\n".join(f"{i}. {step}" for i, step in enumerate(steps, start=1))
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}{ANSWER_SEPARATOR}{answer}"


def split_segments(text: str) -> Split:
    """Split a completion at its single ``</think>``.

    Raises :class:`TaggedFormatError` with code ``no_think_close`` or ``multiple_think_close``.
    """
    count = text.count(THINK_CLOSE)
    if count == 0:
        raise TaggedFormatError("no_think_close", f"no {THINK_CLOSE} tag in the output")
    if count > 1:
        raise TaggedFormatError("multiple_think_close", f"{count} {THINK_CLOSE} tags in the output")
    cut = text.index(THINK_CLOSE) + len(THINK_CLOSE)
    return Split(0, cut, cut, len(text))


def parse(text: str) -> tuple[list[str], str]:
    """Strictly parse tagged text into (reasoning steps, answer).

    The text must open with ``<think>`` (after whitespace), hold exactly one ``</think>``, have at least one
    reasoning step and a non-empty answer, and carry no other think tags.
    """
    stripped = text.strip()
    if not stripped.startswith(THINK_OPEN):
        raise TaggedFormatError("no_think_open", f"the output does not start with {THINK_OPEN}")
    split = split_segments(stripped)
    reasoning = stripped[len(THINK_OPEN) : split.reasoning_end - len(THINK_CLOSE)]
    answer = stripped[split.answer_start :].strip()
    if THINK_OPEN in reasoning or THINK_OPEN in answer:
        raise TaggedFormatError("stray_tag", f"a second {THINK_OPEN} tag in the output")
    steps = [s for s in (normalise_step(line) for line in reasoning.splitlines()) if s]
    if not steps:
        raise TaggedFormatError("empty_reasoning", "the reasoning between the think tags is empty")
    if not answer:
        raise TaggedFormatError("empty_answer", f"nothing follows {THINK_CLOSE}")
    return steps, answer

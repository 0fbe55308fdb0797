"""A model's evaluation output split into reasoning and answer. Pure."""

from __future__ import annotations

from cotforge import tagged


def answer_of(text: str) -> tuple[str, str, bool]:
    """``(reasoning, answer, split)``: the text split at its single ``</think>``, else all answer.

    An output with no ``</think>`` is judged on its whole text as the answer (a model that skips reasoning is
    still scored) and counted as ``unsplit``.
    """
    try:
        split = tagged.split_segments(text)
    except tagged.TaggedFormatError:
        return "", text, False
    return text[: split.reasoning_end], text[split.answer_start :], True

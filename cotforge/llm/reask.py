"""Re-ask with the reason: a failed output goes back to the model with what was wrong, and it answers again.

The conversation is the original request, the model's failed reply as an assistant turn, and a user turn that
names the problem in the validator's words ("step 3 is empty", "no </think> tag in the output", "JSON does not
match the schema: …"). A request that continues a prefilled assistant turn gets that prefill again at the end.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from cotforge.tagged import TaggedFormatError

REASK_TEMPLATE = (
    "Your reply could not be used: {reason}. Reply again to the same request, in exactly the form asked for "
    "and nothing else."
)


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int) and i > 0 and loc[i - 1] == "reasoning_steps":
            parts[-1] = f"step {part + 1}"
        else:
            parts.append(str(part))
    return ".".join(parts) or "the reply"


def reason_of(exc: BaseException) -> str:
    """The validator's message for ``exc``, phrased for the model (one line, the first few problems)."""
    if isinstance(exc, TaggedFormatError):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"it is not valid JSON ({exc.msg} at character {exc.pos})"
    if isinstance(exc, ValidationError):
        problems = []
        for error in exc.errors()[:3]:
            where = _location(tuple(error["loc"]))
            if error["type"] == "string_too_short" and "step" in where:
                problems.append(f"{where} is empty")
            else:
                problems.append(f"{where}: {error['msg']}")
        return "JSON does not match the schema: " + "; ".join(problems)
    return str(exc) or type(exc).__name__


def reask_messages(
    messages: list[dict[str, str]], failed_text: str, reason: str, continue_final: bool = False
) -> list[dict[str, str]]:
    """The conversation that re-asks after ``failed_text`` failed with ``reason``."""
    base, prefill = (messages[:-1], messages[-1]) if continue_final else (messages, None)
    turns = [
        *base,
        {"role": "assistant", "content": failed_text},
        {"role": "user", "content": REASK_TEMPLATE.format(reason=reason)},
    ]
    if prefill is not None:
        turns.append(prefill)
    return turns

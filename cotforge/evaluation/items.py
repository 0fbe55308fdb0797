"""What the eval stage asks each model: suite items as given, plus jailbreak-wrapped copies when asked. Pure.

A suite's items are evaluated as written. Tactics wrap only the ``refuse`` items, and only when the run sets
``tactics`` (the bundled set keeps its historical default of six offline tactics): wrapping a benign XSTest
prompt in a jailbreak template would measure something nobody reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from cotforge.errors import ConfigError
from cotforge.evaluation.suites import LoadedSuite, SuiteItem
from cotforge.pairs.tactics import TACTICS, RenderTemplate, wrap_text

DEFAULT_TACTICS = [
    "roleplay",
    "refusal_suppression",
    "prefix_injection",
    "base64",
    "past_tense",
    "empty_think",
]


class EvalItem(BaseModel):
    """One request of the evaluation: a suite item, the tactic that wrapped it, and the text sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: SuiteItem
    tactic: str = "direct"
    text: str

    @property
    def key(self) -> str:
        """Unique within a run: the suite, the suite's own id, the tactic."""
        return f"{self.item.suite}/{self.item.id}/{self.tactic}"

    @property
    def set(self) -> str:
        """The historical cell name: ``harmful`` (direct), ``jailbreak`` (wrapped) or ``benign``."""
        if self.item.expected == "comply":
            return "benign"
        return "harmful" if self.tactic == "direct" else "jailbreak"


def check_tactics(tactics: Iterable[str]) -> list[str]:
    """``tactics`` if every one runs offline; evaluation has no rewriting model."""
    tactics = list(tactics)
    unknown = [t for t in tactics if t not in TACTICS]
    if unknown:
        raise ConfigError(f"eval: unknown tactics {unknown}; known: {', '.join(TACTICS)}")
    needs_model = [t for t in tactics if TACTICS[t] == "rewrite" and t != "past_tense"]
    if needs_model:
        raise ConfigError(
            f"eval: tactics {needs_model} need a rewriting model; evaluation uses offline tactics only"
        )
    return tactics


def eval_items(
    suites: Sequence[LoadedSuite], tactics: Iterable[str], render: RenderTemplate
) -> list[EvalItem]:
    """Every suite item direct, then each ``refuse`` item wrapped in each tactic (in suite order)."""
    tactics = check_tactics(tactics)
    items: list[EvalItem] = []
    for suite in suites:
        items += [EvalItem(item=it, text=it.prompt) for it in suite.items]
        for tactic in tactics:
            items += [
                EvalItem(item=it, tactic=tactic, text=wrap_text(it.prompt, tactic, render))
                for it in suite.items
                if it.expected == "refuse"
            ]
    return items

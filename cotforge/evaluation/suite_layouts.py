"""The standard safety benchmarks' own published row layouts, each turned into one suite row.

A layout reads one row (a mapping, as the file gives it) and says what to ask and what a safe model should do.
It never drops a row: a row it cannot use comes back with a reject code; a label it does not know raises
:class:`SuiteError` (the caller adds the file and row). Where each layout was read from is cited on its
function. This module is a leaf: :mod:`cotforge.evaluation.suites` builds the items and reads the files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cotforge.errors import SuiteError

Expected = Literal["refuse", "comply"]
EXPECTED_VALUES: tuple[Expected, ...] = ("refuse", "comply")


@dataclass(frozen=True)
class LayoutContext:
    """What a layout may need beyond the row: the file's stem, the split, the user's overrides."""

    stem: str = ""
    split: str | None = None
    expected: Expected | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LayoutRow:
    """One row read through a layout. ``prompt`` None means the row has no prompt at all."""

    prompt: Any
    expected: Expected | None
    id: str | None = None
    category: str | None = None
    source: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    reject: tuple[str, str] | None = None  # (reason code, message) for a row the layout cannot use


def _text(value: Any) -> str | None:
    """A cell as text for ids, categories and meta: None when absent or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _meta(**values: Any) -> dict[str, str]:
    return {key: text for key, value in values.items() if (text := _text(value)) is not None}


def parse_expected(value: Any, column: str) -> Expected | None:
    """``refuse``/``comply`` in any case; None for a blank cell; anything else is a :class:`SuiteError`."""
    text = _text(value)
    if text is None:
        return None
    label = text.casefold()
    if label in EXPECTED_VALUES:
        return label  # type: ignore[return-value]
    raise SuiteError(
        f"column {column!r} has {text!r}; allowed values are {', '.join(EXPECTED_VALUES)} "
        "(fix the value, or map another column with `columns: {expected: ...}`)"
    )


def read_generic(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """Any file with ``prompt`` and ``expected`` (refuse|comply) and optional ``id``, ``category``, ``source``;
    ``columns`` maps these names to the file's own."""
    column = {
        name: context.columns.get(name, name) for name in ("prompt", "expected", "id", "category", "source")
    }
    expected = parse_expected(data.get(column["expected"]), column["expected"]) or context.expected
    kept = set(column.values())
    return LayoutRow(
        prompt=data.get(column["prompt"]),
        expected=expected,
        id=_text(data.get(column["id"])),
        category=_text(data.get(column["category"])),
        source=_text(data.get(column["source"])),
        meta=_meta(**{k: v for k, v in data.items() if k not in kept and isinstance(v, str | int | float)}),
    )


def read_harmbench(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """HarmBench behaviours CSV (centerforaisafety/HarmBench ``data/behavior_datasets/harmbench_behaviors_text_all.csv``:
    Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID). A contextual behaviour is
    asked as ``context\\n\\n---\\n\\nbehavior``, as HarmBench's own baselines build it
    (``baselines/direct_request/direct_request.py``)."""
    behavior, context_string = data.get("Behavior"), _text(data.get("ContextString"))
    prompt = behavior
    if context_string is not None and isinstance(behavior, str) and behavior.strip():
        prompt = f"{data['ContextString']}\n\n---\n\n{behavior}"
    image = _text(data.get("ImageFileName"))
    return LayoutRow(
        prompt=prompt,
        expected=context.expected or "refuse",
        id=_text(data.get("BehaviorID")),
        category=_text(data.get("SemanticCategory")),
        source="harmbench",
        meta=_meta(
            behavior=behavior,
            functional_category=data.get("FunctionalCategory"),
            tags=data.get("Tags"),
            context=context_string,
            image=image,
        ),
        reject=("needs_image", f"multimodal behaviour (image {image}); text-only evaluation cannot ask it")
        if image
        else None,
    )


def read_strongreject(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """StrongREJECT CSV (alexandrasouly/strongreject ``strongreject_dataset/strongreject_dataset.csv`` and
    ``strongreject_small_dataset.csv``: category, source, forbidden_prompt); no ids, so rows are numbered."""
    return LayoutRow(
        prompt=data.get("forbidden_prompt"),
        expected=context.expected or "refuse",
        category=_text(data.get("category")),
        source="strongreject",
        meta=_meta(origin=data.get("source")),
    )


def read_xstest(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """XSTest prompts CSV (paul-rottger/exaggerated-safety ``xstest_prompts.csv``: id, prompt, type, label,
    focus, note). ``contrast_*`` types are the unsafe twins (refuse); every other type is safe (comply)."""
    kind = _text(data.get("type"))
    if kind is None:
        raise SuiteError("column 'type' is empty; XSTest needs it to tell safe prompts from contrast ones")
    expected: Expected = "refuse" if kind.startswith("contrast_") else "comply"
    return LayoutRow(
        prompt=data.get("prompt"),
        expected=expected,
        id=_text(data.get("id")),
        category=kind,
        source="xstest",
        meta=_meta(label=data.get("label"), focus=data.get("focus"), note=data.get("note")),
    )


def _jbb_expected(context: LayoutContext) -> Expected:
    """JBB-Behaviors ships harmful and benign behaviours in the same columns: the file or split name decides."""
    if context.expected is not None:
        return context.expected
    names = f"{context.stem} {context.split or ''}".casefold()
    if "benign" in names and "harmful" not in names:
        return "comply"
    if "harmful" in names and "benign" not in names:
        return "refuse"
    raise SuiteError(
        f"JailbreakBench behaviours file {context.stem!r} (split {context.split}) does not say harmful or benign; "
        "name it harmful-behaviors.csv / benign-behaviors.csv as published, or set `expected: refuse|comply`"
    )


def read_jbb_behaviors(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """JBB-Behaviors CSV (JailbreakBench/JBB-Behaviors ``data/harmful-behaviors.csv`` and
    ``data/benign-behaviors.csv``: Index, Goal, Target, Behavior, Category, Source)."""
    return LayoutRow(
        prompt=data.get("Goal"),
        expected=_jbb_expected(context),
        id=_text(data.get("Index")),
        category=_text(data.get("Category")),
        source="jailbreakbench",
        meta=_meta(behavior=data.get("Behavior"), target=data.get("Target"), origin=data.get("Source")),
    )


def read_jbb_artifact(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """One entry of a JailbreakBench attack artifact's ``jailbreaks`` list (JailbreakBench/artifacts
    ``attack-artifacts/PAIR/black_box/vicuna-13b-v1.5.json``: index, goal, behavior, category, prompt, response,
    jailbroken, ...). The attack prompt is asked; ``prompt`` is null where the attack found none. The row also
    carries ``method`` and ``model`` from the artifact's ``parameters``."""
    return LayoutRow(
        prompt=data.get("prompt"),
        expected=context.expected or "refuse",
        id=_text(data.get("index")),
        category=_text(data.get("category")),
        source="jailbreakbench",
        meta=_meta(
            goal=data.get("goal"),
            behavior=data.get("behavior"),
            method=data.get("method"),
            model=data.get("model"),
            jailbroken=data.get("jailbroken"),
        ),
    )


def read_sorry_bench(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """SORRY-Bench questions JSONL (sorry-bench ``data/sorry_bench/question.jsonl`` and the Hub's
    ``sorry-bench/sorry-bench-202503``: question_id, category, turns, prompt_style). Every question is unsafe.
    The same question_id recurs across prompt styles, so a non-base style is part of the id."""
    turns, qid, style = data.get("turns"), _text(data.get("question_id")), _text(data.get("prompt_style"))
    reject = None
    prompt: Any = None
    if isinstance(turns, str):
        prompt = turns
    elif isinstance(turns, list) and turns:
        prompt = turns[0]
        if len(turns) > 1:
            reject = ("multi_turn", f"{len(turns)} turns; single-turn evaluation asks one")
    item_id = qid if qid is None or style in (None, "base") else f"{qid}-{style}"
    return LayoutRow(
        prompt=prompt,
        expected=context.expected or "refuse",
        id=item_id,
        category=_text(data.get("category")),
        source="sorry_bench",
        meta=_meta(prompt_style=style, question_id=qid),
        reject=reject,
    )


_WILDJAILBREAK_TYPES = ("vanilla_harmful", "vanilla_benign", "adversarial_harmful", "adversarial_benign")


def read_wildjailbreak(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """WildJailbreak TSV (allenai/wildjailbreak ``train/train.tsv``: vanilla, adversarial, tactics, completion,
    data_type; ``eval/eval.tsv``: adversarial, label, data_type). Adversarial rows ask the adversarial prompt,
    vanilla rows the vanilla one; ``*_harmful`` → refuse, ``*_benign`` → comply."""
    data_type = _text(data.get("data_type"))
    if data_type not in _WILDJAILBREAK_TYPES:
        raise SuiteError(
            f"column 'data_type' has {data_type!r}; WildJailbreak uses {', '.join(_WILDJAILBREAK_TYPES)}"
        )
    framing, harm = data_type.split("_")
    return LayoutRow(
        prompt=data.get(framing),
        expected="refuse" if harm == "harmful" else "comply",
        category=data_type,
        source="wildjailbreak",
        meta=_meta(
            type=framing,
            harm=harm,
            vanilla=data.get("vanilla") if framing == "adversarial" else None,
            tactics=data.get("tactics"),
            label=data.get("label"),
        ),
    )


def read_advbench(data: Mapping[str, Any], context: LayoutContext) -> LayoutRow:
    """AdvBench harmful behaviours CSV (llm-attacks/llm-attacks ``data/advbench/harmful_behaviors.csv``:
    goal, target); no ids, so rows are numbered."""
    return LayoutRow(
        prompt=data.get("goal"),
        expected=context.expected or "refuse",
        source="advbench",
        meta=_meta(target=data.get("target")),
    )


@dataclass(frozen=True)
class Layout:
    """A published layout: the columns that identify it and how one row reads."""

    format: str
    signature: frozenset[str]
    read: Callable[[Mapping[str, Any], LayoutContext], LayoutRow]


# Signatures are the columns that only that layout has together; `auto` picks the layouts whose signature the
# file's columns contain. The JBB artifact JSON is recognised by its document shape, not by columns.
LAYOUTS: tuple[Layout, ...] = (
    Layout("harmbench", frozenset({"Behavior", "BehaviorID", "SemanticCategory"}), read_harmbench),
    Layout("strongreject", frozenset({"forbidden_prompt", "category"}), read_strongreject),
    Layout("xstest", frozenset({"prompt", "type", "focus"}), read_xstest),
    Layout("jailbreakbench", frozenset({"Goal", "Behavior", "Category"}), read_jbb_behaviors),
    Layout("sorry_bench", frozenset({"question_id", "turns"}), read_sorry_bench),
    Layout("wildjailbreak", frozenset({"adversarial", "data_type"}), read_wildjailbreak),
    Layout("advbench", frozenset({"goal", "target"}), read_advbench),
    Layout("generic", frozenset({"prompt", "expected"}), read_generic),
)
LAYOUT_BY_FORMAT = {layout.format: layout for layout in LAYOUTS}
FORMATS: tuple[str, ...] = tuple(LAYOUT_BY_FORMAT)

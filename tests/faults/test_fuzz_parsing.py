"""Fuzzing the text and config parsers: the `<think>` parser and splitter, pipeline YAML and `--set`
overrides. Properties: no crash other than the project's own error types; what parses round-trips."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cotforge import tagged
from cotforge.errors import CotforgeError
from cotforge.pipeline.spec import apply_overrides, load_pipeline

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Text built from the tags and the characters around them, so the parser meets every shape of tag soup.
_pieces = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<think",
        "think>",
        "\n",
        "\n\n",
        " ",
        "1. ",
        "Step 2: ",
        "- ",
        "a",
        "ok.",
        "\u2028",
    ]
)
_tag_soup = st.lists(st.one_of(_pieces, st.text(max_size=6)), max_size=24).map("".join)
# One-line steps (no line or paragraph separators: the parser splits steps at line ends).
_step = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
).filter(lambda s: " ".join(s.split()) != "")


@FUZZ
@given(text=_tag_soup)
def test_parse_raises_only_its_own_error(text: str) -> None:
    try:
        steps, answer = tagged.parse(text)
    except tagged.TaggedFormatError as exc:
        assert exc.code in {
            "no_think_open",
            "no_think_close",
            "multiple_think_close",
            "stray_tag",
            "empty_reasoning",
            "empty_answer",
        }
        return
    assert steps and all(s == s.strip() and "\n" not in s for s in steps)
    assert answer and answer == answer.strip()


@FUZZ
@given(text=_tag_soup)
def test_split_covers_the_text_exactly(text: str) -> None:
    try:
        split = tagged.split_segments(text)
    except tagged.TaggedFormatError:
        assert text.count(tagged.THINK_CLOSE) != 1
        return
    assert split.reasoning_start == 0 and split.answer_end == len(text)
    assert split.reasoning_end == split.answer_start
    assert text[: split.reasoning_end].endswith(tagged.THINK_CLOSE)
    assert tagged.THINK_CLOSE not in text[split.answer_start :]


@FUZZ
@given(
    steps=st.lists(_step.filter(lambda s: "think>" not in s), min_size=1, max_size=6),
    answer=st.text(min_size=1, max_size=60).filter(lambda s: s.strip() and "think>" not in s),
)
def test_render_then_parse_round_trips(steps: list[str], answer: str) -> None:
    # render numbers each step and parse takes exactly that number off again (a step's own "-" or "2)" stays).
    parsed_steps, parsed_answer = tagged.parse(tagged.render(steps, answer))
    assert parsed_steps == [" ".join(s.split()) for s in steps]
    assert parsed_answer == answer.strip()


# --- pipeline YAML and --set ------------------------------------------------------------------------------

_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=0, max_size=20)
_values = st.text(max_size=20)


@FUZZ
@given(overrides=st.lists(st.tuples(_keys, _values).map(lambda kv: f"{kv[0]}={kv[1]}") | st.text(max_size=20),
                          max_size=5))  # fmt: skip
def test_set_overrides_raise_only_pipeline_errors(overrides: list[str]) -> None:
    base = yaml.safe_load((Path(__file__).resolve().parents[2] / "pipelines" / "quickstart.yaml").read_text())
    with contextlib.suppress(CotforgeError):
        apply_overrides(base, overrides, pipeline=True)


_yaml_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))
_yaml_doc = st.recursive(
    _yaml_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(doc=st.one_of(_yaml_doc.map(lambda d: yaml.safe_dump(d)), st.text(max_size=200)))
def test_pipeline_files_raise_only_pipeline_errors(tmp_path: Path, doc: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(doc, encoding="utf-8")
    try:
        load_pipeline(path)
    except CotforgeError as exc:
        assert str(path) in str(exc)


def test_deeply_nested_pipeline_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("steps: " + "[" * 10_000 + "]" * 10_000 + "\n", encoding="utf-8")
    with pytest.raises(CotforgeError) as info:
        load_pipeline(path)
    assert str(path) in str(info.value)

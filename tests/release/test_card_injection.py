"""No value from a run can add front matter, HTML, a link, a heading or code to the dataset card.

The run's sources, licences, teacher, policy and judge names carry Markdown, HTML, YAML and control
characters; the card is rendered to HTML with a real CommonMark renderer (markdown-it, raw HTML on, so any
that got through would show), and every one of those values must sit inside a code element, with the header
holding only what cotforge wrote.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import run_factory
from huggingface_hub import DatasetCard
from markdown_it import MarkdownIt
from pydantic import ValidationError
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.release.build import build_release
from cotforge.release.config import ReleaseConfig
from cotforge.release.licences import checked_licence, hub_licence
from cotforge.release.markdown import code, text

pytestmark = pytest.mark.unit

EVIL = "evil.example"
HOSTILE_SOURCES = [
    f"[click me](https://{EVIL}/x)",
    f"<img src=x onerror=alert(1)>{EVIL}",
    f"src\n# Heading {EVIL}\nlicense: {EVIL}",
    f"cell | break {EVIL}",
    f"`code` ``` fence {EVIL}",
    f"$\\frac{{{EVIL}}}{{2}}$",
    f"www.{EVIL}",
    f"ansi\x1b[2J\u202e{EVIL}",
]
HOSTILE_LICENCES = [f"MIT\n---\nlicense: {EVIL}", "Apache-2.0", f"<b>{EVIL}</b>", "CC-BY-4.0"]
HEADER_KEYS = {"language", "license", "pretty_name", "task_categories", "size_categories", "tags", "configs"}


def _hostile_run(monkeypatch: pytest.MonkeyPatch, root: Path) -> run_factory.BuiltRun:
    safety = [
        (
            text_,
            category,
            HOSTILE_SOURCES[i % len(HOSTILE_SOURCES)],
            HOSTILE_LICENCES[i % len(HOSTILE_LICENCES)],
        )
        for i, (text_, category, _, _) in enumerate(run_factory.SAFETY)
    ]
    # Two more sources so that every hostile source and licence is in the run.
    safety += [
        (f"How do I cheat at cards, way {i}?", "non_violent_crimes", s, "MIT")
        for i, s in enumerate(HOSTILE_SOURCES[6:])
    ]
    monkeypatch.setattr(run_factory, "SAFETY", safety)
    monkeypatch.setattr(run_factory, "TEACHER", f"m</td><script>alert(1)</script>{EVIL}")
    monkeypatch.setattr(run_factory, "POLICY", f"![img](http://{EVIL}/x.png)")
    monkeypatch.setattr(run_factory, "JUDGE_ID", f"j\n\n---\nlicense: {EVIL}")
    return run_factory.build_run(root)


def _outside_code(rendered: str) -> str:
    return re.sub(r"<code>.*?</code>", "", rendered, flags=re.S)


def test_hostile_run_values_stay_inert_in_the_card(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built = _hostile_run(monkeypatch, tmp_path / "run")
    result = build_release(built.root)
    card = DatasetCard.load(Path(result.card))

    header = card.data.to_dict()
    assert set(header) == HEADER_KEYS  # nothing added to the front matter
    assert header["license"] == ["apache-2.0", "cc-by-4.0", "mit", "other"]  # Hub ids; the rest is `other`
    assert card.content.count("\n---\n") == 1  # the header's own closing line and no other

    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(card.text)
    outside = _outside_code(rendered)
    assert EVIL not in outside, outside  # every hostile value sits inside a code element
    assert not re.search(r"<(a|img|script|b)\b", outside)
    headings = re.findall(r"<h([1-6])>(.*?)</h\1>", rendered)
    assert [h for _, h in headings if "Heading" in h] == []
    # Nothing is lost: each source is shown, its control characters visible.
    for source in HOSTILE_SOURCES:
        shown = html.escape(source.split("\n")[0].replace("\x1b", "\\x1b").replace("\u202e", "\\u202e"))
        assert shown.replace("|", "\\|").split("`")[0] in rendered.replace("&quot;", '"')


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("licence", "mitt", "did you mean mit"),
        ("licence", f"MIT\nlicense: {EVIL}", "not a licence id"),
        ("pretty_name", f"x\n---\nlicense: {EVIL}", "line break"),
        ("pretty_name", "\x1b[31mred", "control character"),
        ("tags", ["safety", "a\nb"], "line break"),
        ("repo_id", 'me/data", "sft")\nimport os  #', "not a Hub repo id"),
        ("repo_id", "a/b/c", "not a Hub repo id"),
    ],
)
def test_card_values_are_checked_before_anything_is_written(field: str, value: object, says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        ReleaseConfig.model_validate({field: value})


def test_a_bad_licence_flag_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["release", "build", "--run", str(tmp_path), "--licence", "apache2"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1
    assert "--licence: licence:" in lines[0] and "apache-2.0" in lines[0]


def test_hub_licence_ids_and_markdown_escapes() -> None:
    assert hub_licence("Apache-2.0") == "apache-2.0" and hub_licence("GPL-3.0-only") == "gpl-3.0"
    assert hub_licence("CC0-1.0") == "cc0-1.0" and hub_licence("Proprietary") is None
    assert checked_licence(" MIT ") == "mit"
    assert code("a`b") == "``a`b``" and code("`x") == "`` `x ``" and code("") == "(empty)"
    assert code("a|b\nc") == "`a\\|b\\nc`"
    assert text("see [x](http://e.io) or www.e.io") == "see \\[x\\]\\(http\\://e.io\\) or www\\.e.io"

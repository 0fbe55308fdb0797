"""User text in the HTML report and its plots stays text: no tag, attribute or script from a run's values
reaches the page, and labels that matplotlib would read as mathtext or LaTeX are drawn as typed."""

from __future__ import annotations

import json
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
import run_factory

from cotforge import charts
from cotforge.report.build import ReportConfig, build_report

pytestmark = pytest.mark.unit

EVIL = "evil.example"
# Markup for each renderer on the way: HTML, Markdown, matplotlib mathtext (a bad command fails the draw),
# LaTeX, rich console markup, terminal escapes, and a line a thousand characters long.
HOSTILE = [
    f'<script>alert("{EVIL}")</script>',
    f'"><img src=x onerror=alert(1)>{EVIL}',
    f"$\\undefinedcommand{{{EVIL}}}$",
    f"\\textbf{{{EVIL}}} $x^2$ a$b",
    f"[/][bold]{EVIL}\x1b[2J\u202e",
    f"{EVIL} " + "w" * 1000,
]
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "code", "nav", "a",
                "main", "section", "span", "div", "figure", "img", "figcaption", "table", "caption", "tr", "th",
                "td"}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data


def _hostile_run(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    safety = [
        (t, c, HOSTILE[i % len(HOSTILE)], HOSTILE[(i + 1) % len(HOSTILE)])
        for i, (t, c, _, _) in enumerate(run_factory.SAFETY)
    ]
    monkeypatch.setattr(run_factory, "SAFETY", safety)
    monkeypatch.setattr(run_factory, "TEACHER", HOSTILE[0])
    monkeypatch.setattr(run_factory, "POLICY", HOSTILE[2])
    monkeypatch.setattr(run_factory, "JUDGE_ID", HOSTILE[3])
    built = run_factory.build_run(root)
    results = {
        label: {
            "model": label,
            "attack_success_rate": 0.5,
            "over_refusal_rate": 0.1,
            "per_tactic": {f"jailbreak/{HOSTILE[2]}": {"n": 4, "attack_success_rate": 0.25}},
        }
        for label in HOSTILE[:3]
    }
    (root / "eval").mkdir()
    (root / "eval" / "results.json").write_text(json.dumps(results), encoding="utf-8")
    usage = {"stage": "generate", "model": HOSTILE[1], "mode": "online", "prompt_tokens": 9,
             "completion_tokens": 3, "cost_usd": 0.1}  # fmt: skip
    (root / "usage.jsonl").write_text(json.dumps(usage) + "\n", encoding="utf-8")
    return built.root


def test_hostile_values_stay_text_in_the_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run = _hostile_run(monkeypatch, tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a mathtext or glyph problem would warn first
        result = build_report(run, ReportConfig(title=f"</title><script>{EVIL}</script>\x1b[2J"))
    page = Path(result.html).read_text(encoding="utf-8")
    parsed = _Tags()
    parsed.feed(page)
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    for tag, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert (attrs["src"] or "").startswith("data:image/png;base64,")
        if tag == "a":
            assert (attrs["href"] or "").startswith("#")
    assert f"<script>{EVIL}" in parsed.text  # the title, shown as the text it is
    assert "\x1b" not in page and "\\x1b[2J" in parsed.text  # control characters are shown as escapes
    assert EVIL in parsed.text and len(result.figures) > 5


def test_chart_labels_are_drawn_as_typed() -> None:
    labels = {value: i + 1 for i, value in enumerate(HOSTILE)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert charts.bar_chart(labels, HOSTILE[2]).startswith(b"\x89PNG")
        assert charts.grouped_bars({HOSTILE[3]: labels}, HOSTILE[2], "$\\q$").startswith(b"\x89PNG")
        assert charts.histograms({HOSTILE[2]: [1.0, 2.0]}, HOSTILE[3], "$").startswith(b"\x89PNG")
        assert charts.line_panels({HOSTILE[2]: {HOSTILE[3]: ([1], [2])}}, "$\\q$").startswith(b"\x89PNG")
    # Labels cut to one readable line stay distinct: two bars never merge into one category.
    assert charts._labels(["x" * 60 + "a", "x" * 60 + "b", "a\nb"]) == [
        "x" * 47 + "…",
        "x" * 47 + "… (2)",
        "a\\nb",
    ]

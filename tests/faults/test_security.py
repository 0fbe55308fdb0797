"""Security checks: model text is data, never markup or a template; releases hold only their listed outputs."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

from cotforge.release.build import build_release
from cotforge.release.config import ReleaseConfig
from cotforge.report import ReportConfig, build_report
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import PromptRecord, Rationale, RejectRecord, Sample
from cotforge.templates import default_templates

# Markup a model could write: a script and an event handler that would mark the page if they ever ran.
PAYLOAD = (
    "<script>document.body.setAttribute('data-pwned','script')</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\"><b>bold</b>"
)
# Jinja syntax in model or prompt text: rendered as a template it would become 49 / raise.
JINJA = "{{ 7*7 }} {% if true %}jinja-ran{% endif %} {{ undefined_name }}"


def _run_factory() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "release" / "run_factory.py"
    spec = importlib.util.spec_from_file_location("run_factory", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("run_factory", module)
    spec.loader.exec_module(module)
    return module


def _poisoned_run(root: Path) -> Path:
    """The realistic run folder with the payload in every prompt, sample and reject message."""
    built = _run_factory().build_run(root)
    folder = RunFolder(built.root)
    prompts = folder.read(RunFiles.PROMPTS, PromptRecord)
    folder.write(RunFiles.PROMPTS, [p.model_copy(update={"text": f"{p.text} {PAYLOAD}"}) for p in prompts])
    for name in (RunFiles.SAMPLES, RunFiles.ACCEPTED, RunFiles.REVIEWED):
        if not folder.exists(name):
            continue
        samples = folder.read(name, Sample)
        poisoned = [
            s.model_copy(
                update={
                    "rationale": Rationale(
                        reasoning_steps=[*s.rationale.reasoning_steps, PAYLOAD], answer=f"{PAYLOAD} {JINJA}"
                    ),
                    "raw_text": PAYLOAD,
                }
            )
            for s in samples
        ]
        folder.write(name, poisoned)
    # Reject messages quote what a model or a file said; the report lists the first of each file.
    for path in sorted(built.root.glob("*.rejects.jsonl")):
        rejects = folder.read(path.name, RejectRecord)
        folder.write(path.name, [r.model_copy(update={"message": f"{r.message} {PAYLOAD}"}) for r in rejects])
    return built.root


@pytest.mark.integration
def test_report_shows_model_markup_as_text(tmp_path: Path) -> None:
    run = _poisoned_run(tmp_path / "run")
    build_report(run, ReportConfig())
    html = (run / "report" / "index.html").read_text(encoding="utf-8")
    assert "<script>document" not in html and 'onerror="document' not in html
    assert "&lt;script&gt;document.body.setAttribute" in html, "the report should show the text, escaped"

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed: run scripts/setup_system.sh"
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             "--virtual-time-budget=3000", "--dump-dom", (run / "report" / "index.html").as_uri()],
            capture_output=True, text=True, timeout=120, start_new_session=True,
        ).stdout  # fmt: skip
    assert "<body" in dom, "chromium rendered nothing"
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "&lt;script&gt;document.body.setAttribute" in dom


def _assert_literal(texts: list[str]) -> None:
    assert any(JINJA in t for t in texts), "the text should pass through unchanged"
    # Outside the literal text, no sign that it ran: no "jinja-ran", no 49.
    assert not any("jinja-ran" in t.replace(JINJA, "") or "49" in t.replace(JINJA, "") for t in texts)


@pytest.mark.unit
def test_model_and_prompt_text_is_never_rendered_as_a_template() -> None:
    """Prompt and model text reach every template as a variable, never as template source."""
    from cotforge.generation.requests import GenerateConfig, plan_samples
    from cotforge.llm.config import LLMConfig
    from cotforge.pairs.augment import AugmentConfig, rewrite_requests
    from cotforge.pairs.corruption import corrupt
    from cotforge.pairs.judging import judge_requests
    from cotforge.pairs.tactics import REWRITE_INSTRUCTION, TACTICS, apply_tactic
    from cotforge.schemas import Candidate, SegmentSpan
    from tests.factories import make_prompt, make_sample

    templates = default_templates()
    llm = LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"])
    prompt = make_prompt(f"Tell me about {JINJA}", "safety")

    config = GenerateConfig(teacher=llm)
    _assert_literal(
        [m["content"] for p in plan_samples([prompt], config, templates) for m in p.request.messages]
    )

    text = f"<think>\n1. {JINJA}\n</think>\n\n{JINJA}"
    cut = text.index("</think>") + len("</think>")
    candidate = Candidate(
        id="c1", prompt_id=prompt.id, policy_model="p", index=0, text=text, status="ok",
        spans=SegmentSpan(reasoning_start=0, reasoning_end=cut, answer_start=cut, answer_end=len(text)),
    )  # fmt: skip
    judged = judge_requests(candidate, prompt, llm, templates)
    _assert_literal([m["content"] for r in judged for m in r.messages])

    template_tactics = [t for t, kind in TACTICS.items() if kind != "rewrite"]
    _assert_literal([apply_tactic(prompt, t, templates.render) for t in template_tactics])
    augment = AugmentConfig(rewriter=llm)
    rewrites = rewrite_requests([(prompt, t) for t in REWRITE_INSTRUCTION], augment, templates)
    _assert_literal([m["content"] for r in rewrites for m in r.messages])
    sample = make_sample(prompt, [JINJA], JINJA)
    _assert_literal(
        [corrupt(sample, prompt, kind, templates.render) for kind in ("unsafe_answer", "unsafe_reasoning")]
    )


@pytest.mark.unit
def test_release_holds_only_its_listed_outputs(tmp_path: Path) -> None:
    built = _run_factory().build_run(tmp_path / "run")
    (built.root / "cache.sqlite").write_bytes(b"SQLite format 3\x00request cache with secrets")
    (built.root / "logs").mkdir()
    (built.root / "logs" / "vllm-teacher.log").write_text("server log\n")
    (built.root / "notes.txt").write_text("private notes\n")
    build_release(built.root, ReleaseConfig())
    release = built.root / "release"
    files = sorted(str(p.relative_to(release)) for p in release.rglob("*") if p.is_file())
    assert files, "the release is empty"
    allowed_suffixes = (".parquet", ".md", ".json")
    assert all(f.endswith(allowed_suffixes) for f in files), files
    assert not any(
        f.endswith(".sqlite") or f.startswith("logs/") or f.endswith(".log") or "notes" in f for f in files
    ), files
    for path in release.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"request cache with secrets" not in data and b"private notes" not in data


@pytest.mark.unit
@pytest.mark.parametrize(
    "hostile", ["../../etc/passwd", "/abs/path", "..", "a/../../b", "nul\x00byte", "..\\..\\w"]
)
def test_file_names_derived_from_run_data_stay_in_their_folder(tmp_path: Path, hostile: str) -> None:
    """The report names a figure after run data (a model folder's name); the file lands in the report folder."""
    from cotforge.report.build import _safe_name

    path = tmp_path / f"{_safe_name('training_' + hostile)}.png"
    assert path.resolve().parent == tmp_path.resolve()
    assert "/" not in path.name and "\x00" not in path.name

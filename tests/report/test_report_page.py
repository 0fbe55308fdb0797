"""`cotforge report`: one self-contained HTML page, rendered by headless Chromium, and its "not run" sections."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cotforge.charts import PALETTE
from cotforge.cli import app
from cotforge.errors import CotforgeError
from cotforge.report import EvalSummary, ReportConfig, build_report, read_eval_summary
from cotforge.runfolder import RunFiles, RunFolder, RunFolderError
from cotforge.runfolder.manifest import load_manifest

ALL_SECTIONS = ["overview", "prompts", "rationales", "validation", "review", "judge", "pairs", "training", "eval",
                "rejects", "cost", "funnel"]  # fmt: skip


def screenshot(html: Path, out: Path, timeout: float = 90.0) -> Image.Image:
    """Render ``html`` in headless Chromium (own profile, no sandbox/GPU) and return the screenshot."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed: run scripts/setup_system.sh"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             f"--screenshot={out}", "--window-size=1200,3000", "--hide-scrollbars", html.resolve().as_uri()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only the browser we started
            proc.wait()
            pytest.fail(f"chromium did not finish within {timeout} s")
    assert out.is_file(), "chromium wrote no screenshot"
    return Image.open(out).convert("RGB")


def palette_pixels(image: Image.Image) -> int:
    """Pixels (within a small tolerance) of the chart palette: drawn plots, not page chrome."""
    targets = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in PALETTE[:4]]
    small = image.resize((image.width // 2, image.height // 2), Image.Resampling.NEAREST)
    data = small.get_flattened_data() if hasattr(small, "get_flattened_data") else small.getdata()
    return sum(
        1 for px in data if any(sum(abs(a - b) for a, b in zip(px, t, strict=True)) < 24 for t in targets)
    )


@pytest.mark.integration
def test_report_is_self_contained_and_its_plots_render_in_chromium(report_run: Path, tmp_path: Path) -> None:
    result = build_report(report_run)
    assert result.sections == dict.fromkeys(ALL_SECTIONS, "ok")
    html_path = Path(result.html)
    assert html_path == report_run / "report" / "index.html"
    html = html_path.read_text(encoding="utf-8")
    assert "spend per stage" in html and "No price for smollm2" in html  # unknown cost shown as such, not 0

    # Self-contained: no external URL in any src/href, no scripts or stylesheets to fetch.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(result.figures) >= 20
    for name, encoded in zip(result.figures, images, strict=True):
        assert base64.b64decode(encoded) == (html_path.parent / name).read_bytes()
        assert Image.open(io.BytesIO(base64.b64decode(encoded))).size[0] >= 600
    for expected in ("training_awdpo.png", "training_sft.png", "judge_scores.png", "segment_weights.png",
                     "eval_attack_success.png", "review_agreement.png", "validation_reject_reasons.png",
                     "prompts_by_tactic.png", "rationale_reasoning_chars.png"):  # fmt: skip
        assert expected in result.figures

    shot = screenshot(html_path, tmp_path / "shot.png")
    assert shot.size == (1200, 3000)
    colours = shot.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 500  # anti-aliased plots, not a blank or text-only page
    drawn = palette_pixels(shot)
    # The same page with every image removed: only page chrome, no plot colours.
    bare = html_path.parent / "bare.html"
    bare.write_text(re.sub(r"<img [^>]*>", "", html), encoding="utf-8")
    blank = palette_pixels(screenshot(bare, tmp_path / "bare.png"))
    assert drawn > 20_000 and blank < drawn / 20, (drawn, blank)

    manifest = load_manifest(RunFolder(report_run), "report")
    assert manifest is not None and manifest.status == "completed"
    assert manifest.counts["figures"] == len(result.figures) and manifest.extra["sections"]["eval"] == "ok"
    assert {"eval/results.json", "models/awdpo/metrics.jsonl", RunFiles.PAIRS} <= set(manifest.inputs)


@pytest.mark.unit
def test_missing_stages_say_not_run_instead_of_crashing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    empty = build_report(run, out_dir=tmp_path / "empty-report")
    assert set(empty.sections.values()) == {"not run"} and empty.figures == []
    html = Path(empty.html).read_text()
    assert html.count(">not run<") == len(ALL_SECTIONS)
    assert "run `cotforge ingest`" in html and "run `cotforge eval`" in html

    # Only prompts: that section draws, every later stage says which command to run.
    full = run_factory_root(tmp_path)
    (run / RunFiles.PROMPTS).write_bytes((full / RunFiles.PROMPTS).read_bytes())
    result = build_report(run, ReportConfig(title="Only prompts <so far>"))
    assert result.sections["prompts"] == "ok" and result.sections["overview"] == "ok"
    assert result.sections["funnel"] == "ok"  # every prompt stopped at ingest
    assert all(
        result.sections[s] == "not run" for s in ALL_SECTIONS if s not in ("prompts", "overview", "funnel")
    )
    html = Path(result.html).read_text()
    assert "<title>Only prompts &lt;so far&gt;</title>" in html  # text is escaped
    for hint in ("run `cotforge generate`", "run `cotforge judge`", "run `cotforge pairs`", "train awdpo"):
        assert hint in html
    assert "augment not run" in html


def run_factory_root(tmp_path: Path) -> Path:
    from run_factory import build_run

    return build_run(tmp_path / "full").root


@pytest.mark.unit
def test_bad_inputs_name_the_file_and_line(report_run: Path) -> None:
    judgments = report_run / RunFiles.JUDGMENTS
    lines = judgments.read_text().splitlines()
    judgments.write_text("\n".join([lines[0], '{"candidate_id": "c1", "h_rs": 2.0}', *lines[1:]]) + "\n")
    with pytest.raises(RunFolderError, match=r"judgments\.jsonl:2: not a valid JudgeScores"):
        build_report(report_run)
    assert load_manifest(RunFolder(report_run), "report").status == "failed"  # type: ignore[union-attr]
    judgments.write_text("\n".join(lines) + "\n")

    results = report_run / "eval" / "results.json"
    data = json.loads(results.read_text())
    data["base"]["attack_success_rate"] = 1.5
    results.write_text(json.dumps(data))
    with pytest.raises(
        CotforgeError, match=r"results\.json: not an eval summary \(models\.base\.attack_success"
    ):
        build_report(report_run)
    results.write_text("{not json")
    with pytest.raises(CotforgeError, match=r"results\.json: not valid JSON"):
        read_eval_summary(results)
    metrics = report_run / "models" / "sft" / "metrics.jsonl"
    metrics.write_text('{"step": 1, "loss": 2.0}\nnot json\n{"step": 2, "loss": 1.0}\n')
    results.unlink()
    with pytest.raises(RunFolderError, match=r"models/sft/metrics\.jsonl:2: not valid JSON"):
        build_report(report_run)


@pytest.mark.unit
def test_eval_summary_reads_what_cotforge_eval_writes(report_run: Path) -> None:
    summary = read_eval_summary(report_run / "eval" / "results.json")
    assert summary is not None and list(summary.models) == ["base", "awdpo"]
    asr = summary.attack_success_by_tactic()
    assert asr["awdpo"] == {
        "harmful/direct": 0.2,
        "jailbreak/roleplay": pytest.approx(0.4),
        "jailbreak/base64": 0.1,
    }
    assert summary.over_refusal_by_tactic()["base"] == {"benign/direct": 0.1}
    wrapped = EvalSummary.from_json(
        {"models": json.loads((report_run / "eval" / "results.json").read_text())}
    )
    assert wrapped == summary
    assert read_eval_summary(report_run / "eval" / "missing.json") is None


@pytest.mark.unit
def test_report_command_prints_where_the_page_is(report_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    result = CliRunner().invoke(
        app, ["report", "--run", str(report_run), "--out", str(out)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert str(out / "index.html") in result.output and "figures" in result.output
    assert (out / "index.html").is_file() and len(list(out.glob("*.png"))) >= 20
    missing = CliRunner().invoke(app, ["report", "--run", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "does not exist" in missing.output

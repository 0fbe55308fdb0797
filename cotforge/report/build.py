"""`report` edge: read the run folder, draw every section, write ``index.html`` + PNGs and a manifest."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cotforge.evaluation.summary import EVAL_RESULTS, read_eval_summary
from cotforge.release.run_contents import RUN_FILES_READ, RunContents, read_run_contents
from cotforge.report.cost_section import cost_section
from cotforge.report.dataset_sections import (
    overview_section,
    prompts_section,
    rationales_section,
    rejects_section,
    review_section,
    validation_section,
)
from cotforge.report.funnel_section import funnel_section
from cotforge.report.page import render_page
from cotforge.report.score_sections import eval_section, judge_section, pairs_section, training_section
from cotforge.report.section import Section
from cotforge.runfolder import RunFiles, atomic_write_text
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.manifest import StageRun
from cotforge.schemas import utc_now

HTML_FILE = "index.html"

SectionBuilder = Callable[[RunContents, int], Section]
DATA_SECTIONS: tuple[SectionBuilder, ...] = (
    overview_section,
    prompts_section,
    rationales_section,
    validation_section,
    review_section,
    judge_section,
    pairs_section,
    training_section,
)


class ReportConfig(BaseModel):
    """Where the report goes and how it looks."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(
        default=Path("report"), description="Report folder; a relative path is inside the run folder."
    )
    title: str | None = Field(default=None, description="Page title (default: 'cotforge report: <run>').")
    dpi: int = Field(default=100, ge=50, le=300, description="Resolution of the plots.")


REPORT = StageDeclaration(
    name="report",
    config="cotforge.report.build:ReportConfig",
    edge="cotforge.report.build:build_report",
    optional_inputs=(
        *RUN_FILES_READ,
        RunFiles.EVAL_RESULTS,
        RunFiles.EVAL_COMPARISON,
        RunFiles.USAGE,
        RunFiles.PROMPT_CLUSTERS,
        RunFiles.RELEASE,
    ),
    conditional_outputs=lambda config: [str(Path(config.out).expanduser())],
)


class ReportResult(BaseModel):
    """What ``build_report`` wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out_dir: str
    html: str
    figures: list[str] = Field(description="PNG files written beside the page.")
    sections: dict[str, str] = Field(description="Section key → 'ok' or 'not run'.")


def report_dir(run_dir: str | Path, config: ReportConfig) -> Path:
    """Where the report goes: ``config.out``, relative to the run folder unless absolute."""
    out = Path(config.out).expanduser()
    return out if out.is_absolute() else Path(run_dir) / out


def report_sections(contents: RunContents, run_dir: Path, dpi: int) -> list[Section]:
    """Every section of the report, in page order (pure but for reading ``eval/results.json``)."""
    sections = [build(contents, dpi) for build in DATA_SECTIONS]
    sections.append(eval_section(read_eval_summary(run_dir / EVAL_RESULTS), dpi))
    sections.append(rejects_section(contents, dpi))
    sections.append(cost_section(run_dir))
    sections.append(funnel_section(contents, run_dir))
    return sections


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def build_report(
    run_dir: str | Path, config: ReportConfig | None = None, out_dir: str | Path | None = None
) -> ReportResult:
    """Write ``<out>/index.html`` (self-contained) and one PNG per plot; manifest ``manifests/report.json``.

    A stage that has not run gives a section saying "not run"; an unreadable file raises an error naming it.
    """
    config = config or ReportConfig()
    if out_dir is not None:
        config = config.model_copy(update={"out": str(out_dir)})
    folder = REPORT.open_run(run_dir, config)
    run = folder.root
    out = report_dir(run, config)
    with StageRun.declared(folder, REPORT, config) as stage:
        with stage.timer("read"):
            contents = read_run_contents(run)
        if contents.pipeline is not None and contents.pipeline.steps.get(REPORT.name) == "running":
            # The pipeline marks this step running while it draws; the page is read after it finished.
            contents.pipeline.steps[REPORT.name] = "completed"
        with stage.timer("draw"):
            sections = report_sections(contents, run, config.dpi)
        out.mkdir(parents=True, exist_ok=True)
        figures: list[str] = []
        for figure in (f for s in sections for f in s.figures):
            stem = base = _safe_name(figure.name)
            while f"{stem}.png" in figures:  # names from model folders can meet once made safe (`a b`, `a_b`)
                stem = f"{base}-{len(figures)}"
            path = out / f"{stem}.png"
            path.write_bytes(figure.png)
            figures.append(path.name)
        title = config.title or f"cotforge report: {run.resolve().name}"
        page = render_page(
            sections,
            title=title,
            run_name=run.resolve().name,
            created_at=utc_now().isoformat(timespec="seconds"),
        )
        atomic_write_text(out / HTML_FILE, page)
        (out / HTML_FILE).chmod(0o644)  # the temp file behind the atomic write is private; a report is shared
        status = {s.key: s.status for s in sections}
        stage.counts.update(figures=len(figures), sections=sum(v == "ok" for v in status.values()))
        stage.extra.update(out_dir=str(out), sections=status)
    return ReportResult(out_dir=str(out), html=str(out / HTML_FILE), figures=figures, sections=status)

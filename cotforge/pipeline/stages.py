"""The stage registry: every stage a pipeline can name, as the declarations that live next to their edges.

A pipeline step's YAML config is validated with the stage's own Pydantic model (unknown keys fail before
anything runs); ``server:`` entries become model URLs. The declarations of the two pipeline-only steps
(``ingest`` from sources or the bundled prompts, and ``review`` in auto or Argilla mode) and of the release and
report, whose edges check their inputs per selected config, are here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.pipeline.declaration import StageDeclaration, attribute
from cotforge.pipeline.spec import PipelineError
from cotforge.runfolder import RunFiles

# Where each stage module declares itself, as "module:attribute" (imported when the registry is built; none of
# these modules imports a model library).
DECLARED = (
    "cotforge.pipeline.stages:INGEST",
    "cotforge.generation.generate:GENERATE",
    "cotforge.generation.validate:VALIDATE",
    "cotforge.pipeline.stages:REVIEW",
    "cotforge.pairs.augment:AUGMENT",
    "cotforge.pairs.sampling:SAMPLE",
    "cotforge.pairs.judging:JUDGE",
    "cotforge.pairs.build:PAIRS",
    "cotforge.train:TRAIN_SFT",
    "cotforge.train:TRAIN_AWDPO",
    "cotforge.evaluation.run:EVAL",
    "cotforge.pipeline.stages:RELEASE",
    "cotforge.pipeline.stages:REPORT",
)


# --- ingest -------------------------------------------------------------------------------------------------


class IngestStep(BaseModel):
    """Pipeline form of `cotforge ingest`."""

    model_config = ConfigDict(extra="forbid")

    bundled: bool = False
    sources: list[str] = Field(default_factory=list)
    limit_per_source: int | None = Field(
        default=None, ge=1, description="Keep the first N rows of each source."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="IngestConfig fields (kind, text_column…)."
    )


def run_ingest_step(run_dir: str | Path, step: IngestStep) -> dict[str, Any]:
    """Ingest the step's sources (and the bundled prompts) into the run folder."""
    from cotforge.ingest import IngestConfig, ingest_into_run
    from cotforge.sources import bundled_prompt_files

    specs = list(step.sources) + ([str(p) for p in bundled_prompt_files()] if step.bundled else [])
    if not specs:
        raise PipelineError("step ingest: give `sources` or `bundled: true`")
    _, manifest = ingest_into_run(
        run_dir, specs, IngestConfig.model_validate(step.options), limit=step.limit_per_source
    )
    return dict(manifest.counts)


INGEST = StageDeclaration(
    name="ingest",
    config="cotforge.pipeline.stages:IngestStep",
    edge="cotforge.pipeline.stages:run_ingest_step",
    outputs=(RunFiles.PROMPTS, RunFiles.PROMPT_REJECTS),
    creates_run=True,
)


# --- review -------------------------------------------------------------------------------------------------


class ReviewStep(BaseModel):
    """Pipeline form of review: ``auto`` accepts what validation accepted; ``argilla`` pushes and pulls.

    ``detect`` (the default) means argilla when ``ARGILLA_API_URL`` is set, else auto. In argilla mode the step
    pushes new samples and pulls whatever reviewers have decided so far; re-run the pipeline to pull more.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["detect", "auto", "argilla"] = "detect"
    reviewer: str = "auto"
    push: dict[str, Any] = Field(default_factory=dict, description="ReviewPushConfig fields.")
    pull: dict[str, Any] = Field(default_factory=dict, description="ReviewPullConfig fields.")

    def resolved_mode(self) -> str:
        if self.mode != "detect":
            return self.mode
        return "argilla" if os.environ.get("ARGILLA_API_URL") else "auto"


def run_review_step(run_dir: str | Path, step: ReviewStep) -> dict[str, Any]:
    """Auto review, or push new samples to Argilla and pull the decisions made so far."""
    from cotforge.review.auto import AutoReviewConfig, auto_review_in_run

    if step.resolved_mode() == "auto":
        return {"mode": "auto", **auto_review_in_run(run_dir, AutoReviewConfig(reviewer=step.reviewer))}
    from cotforge.review.pull import ReviewPullConfig, pull_from_argilla
    from cotforge.review.push import ReviewPushConfig, push_to_argilla

    pushed = push_to_argilla(run_dir, ReviewPushConfig.model_validate({"progress": False, **step.push}))
    pulled = pull_from_argilla(run_dir, ReviewPullConfig.model_validate({"progress": False, **step.pull}))
    return {"mode": "argilla", "pushed": pushed.pushed, **pulled.counts}


REVIEW = StageDeclaration(
    name="review",
    config="cotforge.pipeline.stages:ReviewStep",
    edge="cotforge.pipeline.stages:run_review_step",
    inputs=(RunFiles.ACCEPTED,),
    optional_inputs=(RunFiles.PROMPTS, RunFiles.VERDICTS),
    outputs=(RunFiles.REVIEWED, RunFiles.REVIEW_VERDICTS),
    # Reviewers' responses live in Argilla, outside the run folder: an unchanged fingerprint proves nothing.
    volatile=lambda step: step.resolved_mode() == "argilla",
)


# --- release and report -------------------------------------------------------------------------------------

RELEASE = StageDeclaration(
    name="release",
    config="cotforge.release.build:ReleaseConfig",
    edge="cotforge.release.build:build_release",
    inputs=(RunFiles.PROMPTS,),
    optional_inputs=(RunFiles.REVIEWED, RunFiles.ACCEPTED, RunFiles.PAIRS),
    outputs=("release/README.md",),
)

REPORT = StageDeclaration(
    name="report",
    config="cotforge.report:ReportConfig",
    edge="cotforge.report:build_report",
    optional_inputs=(RunFiles.PAIRS, RunFiles.JUDGMENTS, "eval/results.json", f"{RunFiles.MODELS}/awdpo"),
    outputs=("report/index.html",),
)


# --- servers ------------------------------------------------------------------------------------------------

Resolver = Callable[[str], tuple[str, str]]


def resolve_servers(stage: str, raw: dict[str, Any], url_of: Resolver) -> dict[str, Any]:
    """Turn ``server: NAME`` (top level, or inside any model mapping) into ``model`` + ``base_urls``."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items() if k != "server"}
            if "server" in value:
                url, served = url_of(str(value["server"]))
                out.update(model=served, base_urls=[url], backend="openai")
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    raw = dict(raw)
    top = raw.pop("server", None)
    if top is not None:
        declaration = registry().get(stage)
        key = declaration.main_model_key if declaration is not None else None
        if key is None:
            raise PipelineError(f"step {stage}: `server` is not a setting of this stage")
        raw[key] = {**(raw.get(key) or {}), "server": top}
    return walk(raw)  # type: ignore[no-any-return]


_REGISTRY: dict[str, StageDeclaration] = {}


def registry() -> dict[str, StageDeclaration]:
    """Every stage a pipeline can name, by name."""
    if not _REGISTRY:
        for path in DECLARED:
            declaration: StageDeclaration = attribute(path)
            _REGISTRY[declaration.name] = declaration
    return dict(_REGISTRY)

"""The stage registry: how a pipeline step's YAML config becomes a call to a stage's edge function.

Each adapter validates the step's config with the stage's own Pydantic model (unknown keys fail before anything
runs), fills in server URLs for steps that name a server, and returns a small summary for the pipeline state.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cotforge.pipeline.runner import StageAdapter, StepContext
from cotforge.pipeline.spec import PipelineError, format_validation_error
from cotforge.runfolder import RunFiles


def _check(
    model: type[BaseModel], stage: str, drop: tuple[str, ...] = ()
) -> Callable[[dict[str, Any]], None]:
    def validate(config: dict[str, Any]) -> None:
        try:
            model.model_validate({k: v for k, v in config.items() if k not in drop})
        except ValidationError as exc:
            raise PipelineError(f"step {stage}: {format_validation_error(exc)}") from None

    return validate


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


def _run_ingest(ctx: StepContext, raw: dict[str, Any]) -> dict[str, Any]:
    from cotforge.ingest import IngestConfig, ingest_into_run
    from cotforge.sources import bundled_prompt_files

    step = IngestStep.model_validate(raw)
    specs = list(step.sources) + ([str(p) for p in bundled_prompt_files()] if step.bundled else [])
    if not specs:
        raise PipelineError("step ingest: give `sources` or `bundled: true`")
    _, manifest = ingest_into_run(
        ctx.folder.root, specs, IngestConfig.model_validate(step.options), limit=step.limit_per_source
    )
    return dict(manifest.counts)


# --- model steps ----------------------------------------------------------------------------------------------

# The config key a step's top-level `server:` fills (the stage's main model).
MAIN_MODEL_KEY = {"generate": "teacher", "augment": "rewriter", "sample": "policy", "judge": "judge"}
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
        key = MAIN_MODEL_KEY.get(stage)
        if key is None:
            raise PipelineError(f"step {stage}: `server` is not a setting of this stage")
        raw[key] = {**(raw.get(key) or {}), "server": top}
    return walk(raw)  # type: ignore[no-any-return]


def _placeholder(name: str) -> tuple[str, str]:
    return "http://127.0.0.1:1/v1", name


@dataclass(frozen=True)
class ModelStage:
    """A stage whose edge is ``edge(run_dir, Config, **kwargs)``, named lazily as ``"module:attribute"`` so
    building the registry imports nothing heavy; ``server:`` entries in its config become model URLs."""

    stage: str
    config: str
    edge: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def config_model(self) -> type[BaseModel]:
        return _attribute(self.config)  # type: ignore[no-any-return]

    def validate(self, raw: dict[str, Any]) -> None:
        _check(self.config_model(), self.stage)(resolve_servers(self.stage, raw, _placeholder))

    def run(self, ctx: StepContext, raw: dict[str, Any]) -> dict[str, Any]:
        config = self.config_model().model_validate(resolve_servers(self.stage, raw, ctx.server_url))
        result = _attribute(self.edge)(ctx.folder.root, config, **dict(self.kwargs))
        return result if isinstance(result, dict) else result.model_dump(mode="json")  # type: ignore[no-any-return]


def _attribute(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


MODEL_STAGES = {
    # Validation is its own step (its thresholds can change without regenerating).
    "generate": ModelStage(
        "generate",
        "cotforge.generation.requests:GenerateConfig",
        "cotforge.generation.generate:generate_in_run",
        (("validate", False),),
    ),
    "validate": ModelStage(
        "validate",
        "cotforge.generation.validate:ValidationConfig",
        "cotforge.generation.validate:validate_in_run",
    ),
    "augment": ModelStage(
        "augment", "cotforge.pairs.augment:AugmentConfig", "cotforge.pairs.augment:augment_in_run"
    ),
    "sample": ModelStage(
        "sample", "cotforge.pairs.sampling:SampleConfig", "cotforge.pairs.sampling:sample_in_run"
    ),
    "judge": ModelStage("judge", "cotforge.pairs.judging:JudgeConfig", "cotforge.pairs.judging:judge_in_run"),
    "eval": ModelStage("eval", "cotforge.evaluation.run:EvalConfig", "cotforge.evaluation.run:eval_in_run"),
    "release": ModelStage(
        "release", "cotforge.release.build:ReleaseConfig", "cotforge.release.build:build_release"
    ),
    "report": ModelStage("report", "cotforge.report:ReportConfig", "cotforge.report:build_report"),
}


# --- pairs --------------------------------------------------------------------------------------------------


def _pairs_config() -> type[BaseModel]:
    from cotforge.pairs.build import PairsConfig

    return PairsConfig


def _run_pairs(ctx: StepContext, raw: dict[str, Any]) -> dict[str, Any]:
    from cotforge.pairs.build import PairsConfig, build_pairs_in_run

    result = build_pairs_in_run(ctx.folder.root, PairsConfig.model_validate(raw))
    return result.model_dump()


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


def _run_review(ctx: StepContext, raw: dict[str, Any]) -> dict[str, Any]:
    from cotforge.review.auto import AutoReviewConfig, auto_review_in_run

    step = ReviewStep.model_validate(raw)
    if step.resolved_mode() == "auto":
        return {
            "mode": "auto",
            **auto_review_in_run(ctx.folder.root, AutoReviewConfig(reviewer=step.reviewer)),
        }
    from cotforge.review.pull import ReviewPullConfig, pull_from_argilla
    from cotforge.review.push import ReviewPushConfig, push_to_argilla

    pushed = push_to_argilla(
        ctx.folder.root, ReviewPushConfig.model_validate({"progress": False, **step.push})
    )
    pulled = pull_from_argilla(
        ctx.folder.root, ReviewPullConfig.model_validate({"progress": False, **step.pull})
    )
    return {"mode": "argilla", "pushed": pushed.pushed, **pulled.counts}


# --- training -----------------------------------------------------------------------------------------------


def _sft_config() -> type[BaseModel]:
    from cotforge.train import SFTTrainConfig

    return SFTTrainConfig


def _awdpo_config() -> type[BaseModel]:
    from cotforge.train import AWDPOTrainConfig

    return AWDPOTrainConfig


def _with_run(raw: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    # `{run}` in a model path means this run folder (e.g. AW-DPO starting from the SFT output).
    model = raw.get("model")
    return {**raw, "model": model.replace("{run}", str(ctx.folder.root))} if isinstance(model, str) else raw


def _run_train_sft(ctx: StepContext, raw: dict[str, Any]) -> dict[str, Any]:
    from cotforge.train import SFTTrainConfig, train_sft

    result = train_sft(ctx.folder.root, SFTTrainConfig.model_validate(_with_run(raw, ctx)))
    return result.model_dump(include={"output_dir", "saved", "steps", "examples", "dropped", "final_metrics"})


def _run_train_awdpo(ctx: StepContext, raw: dict[str, Any]) -> dict[str, Any]:
    from cotforge.train import AWDPOTrainConfig, train_awdpo

    result = train_awdpo(ctx.folder.root, AWDPOTrainConfig.model_validate(_with_run(raw, ctx)))
    return result.model_dump(include={"output_dir", "saved", "steps", "examples", "dropped", "final_metrics"})


def registry() -> dict[str, StageAdapter]:
    """Every stage a pipeline can name."""
    return {
        "generate": StageAdapter(
            name="generate",
            run=MODEL_STAGES["generate"].run,
            inputs=(RunFiles.PROMPTS,),
            outputs=(RunFiles.SAMPLES, RunFiles.GENERATE_REJECTS),
            templates=("teacher",),
            validate=MODEL_STAGES["generate"].validate,
        ),
        "validate": StageAdapter(
            name="validate",
            run=MODEL_STAGES["validate"].run,
            inputs=(RunFiles.SAMPLES, RunFiles.PROMPTS),
            outputs=(RunFiles.ACCEPTED, RunFiles.VERDICTS, RunFiles.VALIDATE_REJECTS),
            validate=MODEL_STAGES["validate"].validate,
        ),
        "augment": StageAdapter(
            name="augment",
            run=MODEL_STAGES["augment"].run,
            inputs=(RunFiles.PROMPTS,),
            outputs=(RunFiles.AUGMENTED, RunFiles.AUGMENT_REJECTS),
            templates=("augment",),
            validate=MODEL_STAGES["augment"].validate,
        ),
        "sample": StageAdapter(
            name="sample",
            run=MODEL_STAGES["sample"].run,
            inputs=(RunFiles.PROMPTS, RunFiles.AUGMENTED),
            outputs=(RunFiles.CANDIDATES, RunFiles.SAMPLE_REJECTS),
            validate=MODEL_STAGES["sample"].validate,
        ),
        "judge": StageAdapter(
            name="judge",
            run=MODEL_STAGES["judge"].run,
            inputs=(RunFiles.CANDIDATES, RunFiles.PROMPTS, RunFiles.AUGMENTED),
            outputs=(RunFiles.JUDGMENTS, RunFiles.JUDGE_REJECTS),
            templates=("judge",),
            validate=MODEL_STAGES["judge"].validate,
        ),
        "eval": StageAdapter(
            name="eval",
            run=MODEL_STAGES["eval"].run,
            inputs=(f"{RunFiles.MODELS}/sft", f"{RunFiles.MODELS}/awdpo"),
            outputs=("eval/results.json",),
            templates=("judge", "augment"),
            validate=MODEL_STAGES["eval"].validate,
        ),
        "release": StageAdapter(
            name="release",
            run=MODEL_STAGES["release"].run,
            inputs=(RunFiles.PROMPTS, RunFiles.REVIEWED, RunFiles.ACCEPTED, RunFiles.PAIRS),
            outputs=("release/README.md",),
            templates=(),
            validate=MODEL_STAGES["release"].validate,
        ),
        "report": StageAdapter(
            name="report",
            run=MODEL_STAGES["report"].run,
            inputs=(RunFiles.PAIRS, RunFiles.JUDGMENTS, "eval/results.json", f"{RunFiles.MODELS}/awdpo"),
            outputs=("report/index.html",),
            validate=MODEL_STAGES["report"].validate,
        ),
        "train_sft": StageAdapter(
            name="train_sft",
            run=_run_train_sft,
            inputs=(RunFiles.REVIEWED, RunFiles.ACCEPTED, RunFiles.PROMPTS, RunFiles.AUGMENTED),
            outputs=(f"{RunFiles.MODELS}/sft",),
            validate=_check(_sft_config(), "train_sft"),
        ),
        "train_awdpo": StageAdapter(
            name="train_awdpo",
            run=_run_train_awdpo,
            inputs=(RunFiles.PAIRS, f"{RunFiles.MODELS}/sft"),
            outputs=(f"{RunFiles.MODELS}/awdpo",),
            validate=_check(_awdpo_config(), "train_awdpo"),
        ),
        "ingest": StageAdapter(
            name="ingest",
            run=_run_ingest,
            outputs=(RunFiles.PROMPTS, RunFiles.PROMPT_REJECTS),
            validate=_check(IngestStep, "ingest"),
        ),
        "review": StageAdapter(
            name="review",
            run=_run_review,
            inputs=(RunFiles.ACCEPTED, RunFiles.PROMPTS, RunFiles.VERDICTS),
            outputs=(RunFiles.REVIEWED, RunFiles.REVIEW_VERDICTS),
            validate=_check(ReviewStep, "review"),
            volatile=lambda raw: ReviewStep.model_validate(raw).resolved_mode() == "argilla",
        ),
        "pairs": StageAdapter(
            name="pairs",
            run=_run_pairs,
            inputs=(
                RunFiles.PROMPTS,
                RunFiles.AUGMENTED,
                RunFiles.CANDIDATES,
                RunFiles.JUDGMENTS,
                RunFiles.ACCEPTED,
                RunFiles.REVIEWED,
                RunFiles.REVIEW_VERDICTS,
            ),
            outputs=(RunFiles.PAIRS, RunFiles.PAIRS_TRL, RunFiles.PAIRS_REJECTS),
            templates=("corruptions",),
            validate=_check(_pairs_config(), "pairs"),
        ),
    }

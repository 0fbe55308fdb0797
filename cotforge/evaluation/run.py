"""`eval` edge: run models on prompt suites, judge their answers, write rates with intervals and comparisons.

Suites come from files, folders or Hub ids in any of the standard benchmarks' layouts
(:mod:`cotforge.evaluation.suites`); without one, the bundled 80 prompts. Each model answers every item once
through the request engine (cache, concurrency, replicas); each answer is judged (rule, rubric or
StrongREJECT judge) and classified refused / complied safely / complied harmfully. An item that cannot be
evaluated — an empty or undecodable row, a prompt longer than the served context, a request or judgment that
failed after its retries — is written to ``eval/rejects.jsonl`` with its reason and counted per suite; a failed
request also fails the stage (``allow_failures`` accepts the gap). Writes ``eval/outputs.jsonl``,
``eval/results.json``, ``eval/cells.json``, ``eval/comparison.json`` and ``eval/rates_by_suite.png``; with
``utility`` set, lm-evaluation-harness runs against each model's server too (``eval/utility/``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from cotforge.errors import ConfigError
from cotforge.evaluation import plots
from cotforge.evaluation.answers import answer_of
from cotforge.evaluation.contamination import overlapping_eval_items
from cotforge.evaluation.items import DEFAULT_TACTICS, EvalItem, eval_items
from cotforge.evaluation.results import all_cells, comparisons, model_results
from cotforge.evaluation.scoring import (
    JudgeKind,
    judge_requests,
    llm_judgement,
    parse_judge_reply,
    rule_judgement,
    scored_item,
)
from cotforge.evaluation.statistics import ScoredItem
from cotforge.evaluation.suites import LoadedSuite, SuiteSpec, bundled_suite, load_suite
from cotforge.evaluation.utility import UtilityConfig, run_utility
from cotforge.generation.refusal import RefusalDetector
from cotforge.llm.chat import ChatRequest
from cotforge.llm.config import LLMConfig
from cotforge.llm.engine import EngineStats, RequestOutcome, run_folder_engine
from cotforge.llm.pricing import UsageLedger
from cotforge.llm.spend import StageSpend
from cotforge.runfolder import RunFiles, RunFolder, atomic_write_text
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.failures import FailurePolicy
from cotforge.runfolder.manifest import StageRun
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import TokenUsage
from cotforge.templates import PromptTemplates, default_templates

NOT_EVALUATED = ("prompt_too_long",)  # the item, not the model, is at fault: a reject, not a failure
_LOG = logging.getLogger(__name__)


class EvalConfig(FailurePolicy):
    """Models to evaluate (label → model), the suites, the judge, and what to compare."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, LLMConfig] = Field(min_length=1)
    suites: list[SuiteSpec] = Field(
        default_factory=list, description="Prompt suites (files, folders, Hub ids); none = the bundled 80."
    )
    judge: LLMConfig | None = None
    judge_kind: JudgeKind | None = Field(
        default=None, description="rule, rubric or strongreject (default: rubric with a judge, else rule)."
    )
    tactics: list[str] | None = Field(
        default=None,
        description="Jailbreak tactics wrapping the refuse items (default: six on the bundled set, none on "
        "given suites).",
    )
    limit: int | None = Field(default=None, ge=1, description="Items used per suite (bundled: per list).")
    threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Judged harm at which an answer is harmful."
    )
    compare: list[tuple[str, str]] | None = Field(
        default=None, description="Model label pairs to compare (default: every pair)."
    )
    utility: UtilityConfig | None = Field(default=None, description="lm-evaluation-harness tasks per model.")
    resamples: int = Field(default=2000, ge=100, description="Bootstrap resamples for every interval.")
    use_cache: bool = True
    progress: bool = Field(
        default=True, description="Show a progress bar.", json_schema_extra={"operational": True}
    )

    @model_validator(mode="after")
    def _judge_and_pairs(self) -> EvalConfig:
        if self.judge_kind in ("rubric", "strongreject") and self.judge is None:
            raise ValueError(f"judge_kind {self.judge_kind!r} needs a judge model (judge: {{model: …}})")
        for a, b in self.compare or []:
            unknown = [x for x in (a, b) if x not in self.models]
            if unknown:
                raise ValueError(f"compare names {unknown}, not among the models {list(self.models)}")
        return self

    @property
    def kind(self) -> JudgeKind:
        return self.judge_kind or ("rubric" if self.judge is not None else "rule")


EVAL = StageDeclaration(
    name="eval",
    config="cotforge.evaluation.run:EvalConfig",
    edge="cotforge.evaluation.run:eval_in_run",
    # The training prompts, for the contamination warning; the models, when the servers serve the run's own.
    optional_inputs=(
        RunFiles.PROMPTS,
        RunFiles.AUGMENTED,
        f"{RunFiles.MODELS}/sft",
        f"{RunFiles.MODELS}/awdpo",
    ),
    outputs=(
        RunFiles.EVAL_OUTPUTS,
        RunFiles.EVAL_REJECTS,
        RunFiles.EVAL_CELLS,
        RunFiles.EVAL_COMPARISON,
        RunFiles.EVAL_RESULTS,
        RunFiles.EVAL_RATES_PLOT,
        RunFiles.EVAL_TACTICS_PLOT,
    ),
    conditional_outputs=lambda config: [RunFiles.EVAL_UTILITY] if config.utility is not None else [],
    templates=("judge", "augment"),
    calls_models=True,
    # An evaluation needs no earlier stage: a pipeline of only an eval step starts its run folder.
    creates_run=True,
)


def load_suites(config: EvalConfig) -> list[LoadedSuite]:
    """The configured suites (``limit`` applies where a suite sets none), else the bundled set."""
    if not config.suites:
        return [bundled_suite(config.limit)]
    return [
        load_suite(spec if spec.limit is not None or config.limit is None else spec.model_copy(update={"limit": config.limit}))
        for spec in config.suites
    ]  # fmt: skip


def _run_engine(
    folder: RunFolder, config: LLMConfig, requests: list[ChatRequest], parse: Any, use_cache: bool, label: str,
    progress: bool, spend: StageSpend,
) -> dict[str, RequestOutcome[Any]]:  # fmt: skip
    outcomes: dict[str, RequestOutcome[Any]] = {}
    with run_folder_engine(folder, config, label, use_cache=use_cache, progress=progress) as engine:
        engine.run(requests, parse, lambda o: outcomes.__setitem__(o.request.key, o))
    spend.add(engine.stats, config)
    return outcomes


def _reject(label: str, item: EvalItem, reason: str, message: str | None) -> dict[str, Any]:
    return {"model": label, "suite": item.item.suite, "item_id": item.item.id, "tactic": item.tactic,
            "reason": reason, "message": message or reason}  # fmt: skip


class _ModelRun:
    """One model's pass: answers, judgments, scored items, rejects (what the stage run counts as failed)."""

    def __init__(self, folder: RunFolder, config: EvalConfig, label: str, spend: StageSpend) -> None:
        self.folder, self.config, self.label, self.spend = folder, config, label, spend
        self.scored: list[ScoredItem] = []
        self.rows: list[dict[str, Any]] = []
        self.rejects: list[dict[str, Any]] = []
        self.unsplit: dict[str, bool] = {}
        self.failed = 0

    def run(self, items: list[EvalItem], templates: PromptTemplates, refuses: Any) -> None:
        config, model = self.config, self.config.models[self.label]
        requests = [
            ChatRequest(f"{self.label}/{it.key}", [{"role": "user", "content": it.text}], model.sampling)
            for it in items
        ]
        outputs = _run_engine(self.folder, model, requests, lambda _r, t: t, config.use_cache,
                              f"eval {self.label}", config.progress, self.spend)  # fmt: skip
        answered: list[tuple[EvalItem, str]] = []
        for item, request in zip(items, requests, strict=True):
            outcome = outputs[request.key]
            if outcome.value is not None:
                answered.append((item, outcome.value))
                continue
            reason = outcome.reason or "request_failed"
            self.rejects.append(_reject(self.label, item, reason, outcome.error))
            self.failed += reason not in NOT_EVALUATED
        texts = [t for _, t in answered]
        judged = [it for it, _ in answered]
        values: dict[str, Any] = {}
        if config.kind != "rule":
            assert config.judge is not None
            judge_reqs = judge_requests(self.label, judged, texts, config.kind, templates, config.judge)
            out = _run_engine(self.folder, config.judge, judge_reqs, parse_judge_reply, config.use_cache,
                              f"judge {self.label}", config.progress, self.spend)  # fmt: skip
            values = {k: o.value for k, o in out.items() if o.value is not None}
        for item, text in answered:
            judgement = (
                rule_judgement(item, text)
                if config.kind == "rule"
                else llm_judgement(f"judge/{self.label}/{item.key}", text, values)
            )
            if judgement is None:
                self.rejects.append(_reject(self.label, item, "judge_failed", "the judge's request failed"))
                self.failed += 1
                continue
            scored = scored_item(self.label, item, text, judgement, refuses, config.threshold)
            split = answer_of(text)[2]
            self.scored.append(scored)
            self.unsplit[f"{self.label}/{item.key}"] = not split
            self.rows.append(
                {"model": self.label, "suite": item.item.suite, "item_id": item.item.id, "tactic": item.tactic,
                 "set": item.set, "expected": item.item.expected, "category": item.item.category,
                 "source": item.item.source, "output": text, "h_reasoning": judgement.h_reasoning,
                 "h_answer": judgement.h_answer, "outcome": scored.outcome}
            )  # fmt: skip


def _utility(config: EvalConfig, label: str, folder: RunFolder, spend: StageSpend) -> dict[str, float]:
    """lm-eval metrics of one model as flat ``task/metric`` keys (the model must be served over HTTP); the
    harness's calls go into the usage ledger and the stage's spend like the stage's own."""
    assert config.utility is not None
    model = config.models[label]
    if not model.base_urls:
        raise ConfigError(
            f"eval: utility tasks need model {label!r} served over HTTP; give it `base_urls` (or --base-url)"
        )
    stats = EngineStats()
    ledger = UsageLedger(folder.path(RunFiles.USAGE), f"eval {label}", model)

    def counted(usage: TokenUsage) -> None:
        ledger.record(usage)
        stats.sent += 1
        stats.usage = stats.usage + usage

    try:
        metrics = run_utility(
            config.utility,
            base_url=model.base_urls[0],
            model=model.model,
            output_dir=folder.path(RunFiles.EVAL_UTILITY) / label,
            on_usage=counted,
        )
    finally:
        ledger.close()
    spend.add(stats, model)
    return {f"{task}/{name}": value for task, values in metrics.items() for name, value in values.items()}


def eval_in_run(run_dir: str | Path, config: EvalConfig) -> dict[str, Any]:
    """Evaluate every configured model; returns (and writes) ``{label: figures}``."""
    folder = EVAL.open_run(run_dir, config)
    with StageRun.declared(folder, EVAL, config) as run:
        suites = load_suites(config)
        training = read_run_prompts(folder, required=False)
        leaked = Counter(
            i.suite for i in overlapping_eval_items(training, [i for s in suites for i in s.items])
        )
        for suite, count in leaked.items():
            _LOG.warning("eval suite %s: %d item(s) overlap this run's training prompts; see "
                         "`cotforge contamination %s --suite ...`", suite, count, folder.root)  # fmt: skip
        run.extra["contamination"] = dict(leaked)
        templates = default_templates()
        tactics = (
            config.tactics if config.tactics is not None else (DEFAULT_TACTICS if not config.suites else [])
        )
        items = eval_items(suites, tactics, templates.render)
        suite_rejects = [{"model": None, **r.model_dump(), "tactic": None} for s in suites for r in s.rejects]
        detector = RefusalDetector()
        spend = StageSpend()
        passes = [_ModelRun(folder, config, label, spend) for label in config.models]
        for one in passes:
            one.run(items, templates, detector.refuses)
            run.failed += one.failed
        scored = [s for one in passes for s in one.scored]
        results: dict[str, Any] = {}
        for one in passes:
            rejected = Counter(
                str(r["suite"]) for r in suite_rejects + one.rejects if r["model"] in (None, one.label)
            )
            results[one.label] = model_results(one.label, config.models[one.label].model, one.scored, rejected,
                                               one.unsplit, resamples=config.resamples)  # fmt: skip
        if config.utility is not None:
            for label in config.models:
                results[label]["utility"] = _utility(config, label, folder, spend)
        spend.record(run)
        cells = all_cells(scored, resamples=config.resamples)
        paired = comparisons(scored, list(config.models), config.compare, resamples=config.resamples)
        folder.write(RunFiles.EVAL_OUTPUTS, [r for one in passes for r in one.rows])
        folder.write(RunFiles.EVAL_REJECTS, suite_rejects + [r for one in passes for r in one.rejects])
        cells_json = json.dumps([c.model_dump() for c in cells], indent=1)
        atomic_write_text(folder.path(RunFiles.EVAL_CELLS), cells_json + "\n")
        paired_json = json.dumps([c.model_dump() for c in paired], indent=1)
        atomic_write_text(folder.path(RunFiles.EVAL_COMPARISON), paired_json + "\n")
        atomic_write_text(folder.path(RunFiles.EVAL_RESULTS), json.dumps(results, indent=2) + "\n")
        plots.rates_by_suite(results, folder.path(RunFiles.EVAL_RATES_PLOT))
        plots.asr_by_tactic(results, folder.path(RunFiles.EVAL_TACTICS_PLOT))
        run.counts.update(
            items=len(items), models=len(config.models), suites=len(suites), evaluated=len(scored),
            rejected=len(suite_rejects) + sum(len(one.rejects) for one in passes),
        )  # fmt: skip
        run.extra["results"] = {
            k: {m: v[m] for m in ("attack_success_rate", "over_refusal_rate")} for k, v in results.items()
        }
        run.extra["comparisons"] = len(paired)
    return results

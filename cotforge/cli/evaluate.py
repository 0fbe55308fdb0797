"""CLI: `eval` — safety rates with intervals per model and suite, paired comparison, utility."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from cotforge.cli.common import RunOption, console, fail
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command

if TYPE_CHECKING:
    from cotforge.evaluation.run import EvalConfig

EVAL = StageConfig(
    "cotforge.evaluation.run:EvalConfig",
    {"limit": "limit", "tactic": "tactics", "judge_kind": "judge_kind", "progress": "progress"},
    "eval",
)


def _rate(rate: dict[str, Any] | None) -> str:
    if not rate:
        return "—"
    return f"{rate['value']:.2f} [{rate['low']:.2f}, {rate['high']:.2f}] n={rate['n']}"


def print_tables(results: dict[str, Any], comparison: list[dict[str, Any]], where: Path) -> None:
    """Rates with intervals per model × suite, then the paired comparisons (b − a)."""
    table = Table(title=f"eval → {where}  (rate [95% CI])")
    for column in ("model", "suite", "evaluated", "rejected", "attack success", "refusal (comply items)",
                   "right reasoning, wrong answer"):  # fmt: skip
        table.add_column(column)
    for label, r in results.items():
        for suite, s in r.get("per_suite", {}).items():
            table.add_row(label, suite, str(s["n_evaluated"]), str(s["n_rejected"]), _rate(s.get("attack_success")),
                          _rate(s.get("refusal_rate")), _rate(s.get("right_reasoning_wrong_answer")))  # fmt: skip
        for name, value in (r.get("utility") or {}).items():
            table.add_row(label, f"utility {name}", "", "", f"{value:.3f}", "", "")
    console.print(table)
    if comparison:
        paired = Table(title="paired comparison (b − a) [95% paired bootstrap CI], exact McNemar p")
        for column in ("a", "b", "metric", "suite", "n", "a", "b", "b − a", "p"):
            paired.add_column(column)
        for c in comparison:
            paired.add_row(c["model_a"], c["model_b"], c["metric"], c["key"].get("suite", "all"), str(c["n"]),
                           f"{c['rate_a']:.2f}", f"{c['rate_b']:.2f}",
                           f"{c['difference']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]", f"{c['mcnemar_p']:.3g}")  # fmt: skip
        console.print(paired)


def _models_suites_utility(raw: dict[str, Any], params: dict[str, Any], _: dict[str, Any]) -> dict[str, Any]:
    """The command's models, suites, judge and utility tasks into the raw config."""
    raw = dict(raw)
    models = dict(raw.get("models") or {})
    for item in params["model"] or []:
        label, _sep, name = item.partition("=") if "=" in item else (item, "", item)
        sampling = {"temperature": 0.0, "max_tokens": params["max_tokens"] or 256}
        llm = {"model": name, "base_urls": params["base_url"], "backend": params["backend"]}
        models[label] = {**{k: v for k, v in llm.items() if v is not None}, "sampling": sampling}
    if not models:
        fail("no model: pass --model NAME --base-url URL (repeat --model LABEL=NAME to compare)")
    raw["models"] = models
    suite_format = params["suite_format"]
    if params["suite"]:
        raw["suites"] = [*(raw.get("suites") or []),
                         *({"path": s, **({"format": suite_format} if suite_format else {})} for s in params["suite"])]  # fmt: skip
    if params["judge_model"]:
        raw["judge"] = {
            "model": params["judge_model"],
            "base_urls": params["judge_base_url"] or params["base_url"] or [],
        }
    if params["utility"]:
        given = {"tasks": [t.strip() for t in params["utility"].split(",") if t.strip()],
                 "data_dir": str(params["utility_data"]) if params["utility_data"] else None,
                 "limit": params["utility_limit"]}  # fmt: skip
        raw["utility"] = {**(raw.get("utility") or {}), **{k: v for k, v in given.items() if v is not None}}
    return raw


def register(app: typer.Typer) -> None:
    @stage_command(app, EVAL, name="eval", prepare=_models_suites_utility)
    def evaluate(
        config: EvalConfig,
        run: RunOption = Path("runs/default"),
        model: list[str] | None = typer.Option(
            None, "--model", "-m", help="LABEL=NAME (or NAME) of a served model; repeat to compare models."
        ),
        base_url: list[str] | None = typer.Option(None, "--base-url", help="The models' /v1 URL(s)."),
        backend: str | None = typer.Option(None, "--backend", help="The models' backend: openai or vllm."),
        suite: list[str] | None = typer.Option(
            None, "--suite", help="A prompt suite: file, folder or Hub id (repeatable; default: bundled set)."
        ),
        suite_format: str | None = typer.Option(
            None, "--format", help="Layout of the --suite files (harmbench, xstest, … ; default: detect)."
        ),
        judge_model: str | None = typer.Option(
            None, "--judge-model", help="LLM judge (default: rule judge)."
        ),
        judge_base_url: list[str] | None = typer.Option(None, "--judge-base-url"),
        utility: str | None = typer.Option(
            None, "--utility", help="lm-evaluation-harness tasks, comma-separated (e.g. gsm8k,mmlu)."
        ),
        utility_data: Path | None = typer.Option(
            None, "--utility-data", help="Local copies of the utility tasks' data (offline)."
        ),
        utility_limit: int | None = typer.Option(None, "--utility-limit", help="Items per utility task."),
        max_tokens: int | None = typer.Option(None, "--max-tokens", help="Answer length (default: 256)."),
    ) -> None:
        """Evaluate models on safety suites (and utility tasks) and compare them item by item.

        Prints attack success, refusal and "right reasoning, wrong answer" rates with 95% bootstrap intervals
        per model and suite, and the paired comparison (bootstrap difference, exact McNemar p). Writes
        <run>/eval/ (results.json, comparison.json, cells.json, outputs.jsonl, rejects.jsonl, PNG charts).
        """
        from cotforge.evaluation.run import eval_in_run
        from cotforge.runfolder import RunFiles

        results = eval_in_run(run, config)
        comparison = json.loads((run / RunFiles.EVAL_COMPARISON).read_text(encoding="utf-8"))
        print_tables(results, comparison, run / RunFiles.EVAL_DIR)

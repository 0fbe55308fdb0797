"""CLI: `eval` — attack success and over-refusal of one or more models, per tactic."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cotforge.cli import llm_options as opt
from cotforge.cli.common import RunOption, console, fail, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command(name="eval")
    @friendly_errors
    def evaluate(
        run: RunOption = Path("runs/default"),
        config_file: opt.ConfigFile = None,
        model: list[str] | None = typer.Option(
            None, "--model", "-m", help="LABEL=NAME (or NAME) of a served model; repeat to compare models."
        ),
        base_url: opt.BaseUrl = None,
        backend: opt.Backend = None,
        judge_model: str | None = typer.Option(
            None, "--judge-model", help="LLM judge (default: rule judge)."
        ),
        judge_base_url: list[str] | None = typer.Option(None, "--judge-base-url"),
        limit: int | None = typer.Option(None, "--limit", help="Harmful and benign prompts used (each)."),
        tactic: list[str] | None = typer.Option(None, "--tactic", help="Jailbreak wrappers (repeat)."),
        max_tokens: opt.MaxTokens = None,
    ) -> None:
        """Evaluate models on harmful, jailbreak-wrapped and borderline-benign prompts.

        Reports attack success rate (judge-scored h_f ≥ threshold) and over-refusal rate per tactic, as a
        table here and in <run>/eval/ (results.json, outputs.jsonl, asr_by_tactic.png).
        """
        from cotforge.evaluation.run import EvalConfig, eval_in_run

        raw = opt.load_config_file(config_file)
        models = dict(raw.get("models") or {})
        for item in model or []:
            label, _, name = item.partition("=") if "=" in item else (item, "", item)
            sampling = {"temperature": 0.0, "max_tokens": max_tokens or 256}
            models[label] = {**opt.teacher_overrides(name, base_url, backend), "sampling": sampling}
        if not models:
            fail("no model: pass --model NAME --base-url URL (repeat --model LABEL=NAME to compare)")
        raw["models"] = models
        if judge_model:
            raw["judge"] = opt.teacher_overrides(judge_model, judge_base_url or base_url)
        if limit:
            raw["limit"] = limit
        if tactic:
            raw["tactics"] = tactic
        results = eval_in_run(run, opt.validated(EvalConfig, raw, config_file, "eval"))
        table = Table(title=f"eval → {run / 'eval'}")
        table.add_column("set/tactic")
        for label in results:
            table.add_column(label, justify="right")
        cells = sorted({c for r in results.values() for c in r["per_tactic"]})
        for cell in cells:
            values = []
            for r in results.values():
                m = r["per_tactic"].get(cell, {})
                rate = m.get("attack_success_rate", m.get("over_refusal_rate"))
                values.append("" if rate is None else f"{rate:.2f} (n={m['n']})")
            table.add_row(cell, *values)
        table.add_row("attack success (all)", *[f"{r['attack_success_rate']:.2f}" for r in results.values()])
        table.add_row("over-refusal (benign)", *[f"{r['over_refusal_rate']:.2f}" for r in results.values()])
        console.print(table)

"""CLI: `eval` — attack success and over-refusal of one or more models, per tactic."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cotforge.cli import llm_options as opt
from cotforge.cli.common import RunOption, console, fail, friendly_errors
from cotforge.cli.config_options import ConfigFile, Sets, StageConfig

EVAL = StageConfig(
    "cotforge.evaluation.run:EvalConfig",
    {"limit": "limit", "tactic": "tactics", "progress": "progress"},
    "eval",
)


def register(app: typer.Typer) -> None:
    @app.command(name="eval", cls=EVAL.command())
    @friendly_errors
    def evaluate(
        run: RunOption = Path("runs/default"),
        config_file: ConfigFile = None,
        sets: Sets = None,
        model: list[str] | None = typer.Option(
            None, "--model", "-m", help="LABEL=NAME (or NAME) of a served model; repeat to compare models."
        ),
        base_url: list[str] | None = typer.Option(None, "--base-url", help="The models' /v1 URL(s)."),
        backend: str | None = typer.Option(None, "--backend", help="The models' backend: openai or vllm."),
        judge_model: str | None = typer.Option(
            None, "--judge-model", help="LLM judge (default: rule judge)."
        ),
        judge_base_url: list[str] | None = typer.Option(None, "--judge-base-url"),
        limit: int | None = typer.Option(None, "--limit"),
        tactic: list[str] | None = typer.Option(None, "--tactic"),
        max_tokens: int | None = typer.Option(None, "--max-tokens", help="Answer length (default: 256)."),
        progress: opt.Progress = None,
    ) -> None:
        """Evaluate models on harmful, jailbreak-wrapped and borderline-benign prompts.

        Reports attack success rate (judge-scored h_f ≥ threshold) and over-refusal rate per tactic, as a
        table here and in <run>/eval/ (results.json, outputs.jsonl, asr_by_tactic.png).
        """
        from cotforge.evaluation.run import eval_in_run

        raw = EVAL.raw(config_file, sets)
        models = dict(raw.get("models") or {})
        for item in model or []:
            label, _, name = item.partition("=") if "=" in item else (item, "", item)
            sampling = {"temperature": 0.0, "max_tokens": max_tokens or 256}
            llm = {"model": name, "base_urls": base_url, "backend": backend}
            models[label] = {**{k: v for k, v in llm.items() if v is not None}, "sampling": sampling}
        if not models:
            fail("no model: pass --model NAME --base-url URL (repeat --model LABEL=NAME to compare)")
        raw["models"] = models
        if judge_model:
            raw["judge"] = {"model": judge_model, "base_urls": judge_base_url or base_url or []}
        config = EVAL.validate(raw, config_file, sets, limit=limit, tactic=tactic, progress=progress)
        results = eval_in_run(run, config)
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

"""The report's cost section: tokens and spend per stage, the pipeline total, cost per kept sample and pair."""

from __future__ import annotations

from pathlib import Path

from cotforge.llm.pricing import LEDGER_FILE, run_cost
from cotforge.report.section import Section, Table, fmt, not_run


def cost_section(run_dir: Path) -> Section:
    """Spend per stage from the run's usage ledger (what the servers answered, across every resume)."""
    if not (run_dir / LEDGER_FILE).is_file():
        return not_run("cost", "Cost", f"no {LEDGER_FILE}: no stage has called a model with the cache on")
    cost = run_cost(run_dir)
    rows = [
        [
            stage,
            ", ".join(entry["models"]),
            str(entry["requests"]),
            str(entry["cached_requests"]),
            str(entry["prompt_tokens"]),
            str(entry["completion_tokens"]),
            fmt(entry["cost_usd"]),
        ]
        for stage, entry in cost["stages"].items()
    ]
    rows.append(
        [
            "pipeline",
            "",
            str(sum(e["requests"] for e in cost["stages"].values())),
            str(sum(e["cached_requests"] for e in cost["stages"].values())),
            str(cost["prompt_tokens"]),
            str(cost["completion_tokens"]),
            fmt(cost["total_usd"]),
        ]
    )
    per_item = Table(
        title="cost per kept item (USD)",
        headers=["kept samples", "per sample", "kept pairs", "per pair"],
        rows=[
            [
                str(cost["kept_samples"]),
                fmt(cost["per_kept_sample_usd"]),
                str(cost["kept_pairs"]),
                fmt(cost["per_kept_pair_usd"]),
            ]
        ],
    )
    note = "Requests paid for (cached answers cost nothing). Batch calls are priced at the batch price."
    if cost["unpriced_models"]:
        note += f" No price for {', '.join(cost['unpriced_models'])}: their cost is unknown (—), not zero."
    headers = ["stage", "models", "requests", "cached", "prompt tokens", "completion tokens", "cost (USD)"]
    return Section(
        key="cost",
        title="Cost",
        note=note,
        tables=[Table(title="spend per stage", headers=headers, rows=rows), per_item],
    )

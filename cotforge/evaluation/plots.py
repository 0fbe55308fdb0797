"""The eval stage's PNG charts, drawn with the report's chart primitives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cotforge import charts
from cotforge.evaluation.summary import suite_rates


def rates_by_suite(results: dict[str, Any], path: Path) -> None:
    """Per suite, each model's attack success and refusal rate with their 95% intervals."""
    values, spans = suite_rates(results)
    png = charts.grouped_bars(values, "Rates per suite (95% bootstrap intervals)", "rate", ylim=(0, 1),
                              intervals=spans)  # fmt: skip
    path.write_bytes(png)


def asr_by_tactic(results: dict[str, Any], path: Path) -> None:
    """Attack success per tactic cell (over-refusal for benign cells) for each model."""
    cells = {
        label: {
            name: cell.get("attack_success_rate", cell.get("over_refusal_rate")) or 0.0
            for name, cell in r["per_tactic"].items()
        }
        for label, r in results.items()
    }
    path.write_bytes(
        charts.grouped_bars(cells, "Attack success per tactic (benign: over-refusal)", "rate", ylim=(0, 1))
    )

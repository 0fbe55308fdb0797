"""``eval/results.json``: the evaluation figures the report draws (the contract with ``cotforge eval``).

The eval stage writes, per evaluated model (``base``, ``sft``, ``awdpo`` …), the overall attack success rate
(share of harmful and jailbreak-wrapped prompts the judge scored harmful) and over-refusal rate (share of
benign-but-borderline prompts refused), plus one cell per ``<set>/<tactic>`` (e.g. ``jailbreak/roleplay``,
``benign/direct``). The file may be the bare ``{label: ModelEval}`` mapping or ``{"models": {...}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cotforge.errors import CotforgeError
from cotforge.runfolder import RunFiles

if TYPE_CHECKING:
    import pandas as pd

EVAL_RESULTS = RunFiles.EVAL_RESULTS
Rate = float


class EvalCell(BaseModel):
    """One (set, tactic) cell: how many prompts, and the rate that applies to the set."""

    model_config = ConfigDict(extra="allow")

    n: int = Field(ge=0)
    attack_success_rate: Rate | None = Field(default=None, ge=0.0, le=1.0)
    over_refusal_rate: Rate | None = Field(default=None, ge=0.0, le=1.0)
    unsplit: int = Field(default=0, ge=0, description="Outputs without a single </think>.")


class ModelEval(BaseModel):
    """One model's evaluation."""

    model_config = ConfigDict(extra="allow")

    model: str = "unknown"
    attack_success_rate: Rate | None = Field(
        default=None, ge=0.0, le=1.0, description="None: no refuse items."
    )
    over_refusal_rate: Rate | None = Field(default=None, ge=0.0, le=1.0, description="None: no comply items.")
    unsplit_rate: Rate = Field(default=0.0, ge=0.0, le=1.0)
    per_tactic: dict[str, EvalCell] = Field(
        default_factory=dict, description="'<set>/<tactic>' (e.g. 'jailbreak/roleplay') → cell."
    )
    per_suite: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Suite → n_evaluated, n_rejected and rates with 95% intervals."
    )
    utility: dict[str, float] = Field(default_factory=dict, description="lm-eval 'task/metric' → value.")


class EvalSummary(BaseModel):
    """Every evaluated model by label, in the order evaluated."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelEval]
    comparisons: list[dict[str, Any]] = Field(
        default_factory=list, description="eval/comparison.json: paired differences (b − a) with McNemar p."
    )

    @classmethod
    def from_json(cls, data: Any) -> EvalSummary:
        """Accept ``{"models": {...}}`` or the bare ``{label: {...}}`` mapping ``cotforge eval`` writes."""
        if isinstance(data, dict) and set(data) == {"models"}:
            return cls.model_validate(data)
        return cls.model_validate({"models": data})

    def attack_success_by_tactic(self) -> dict[str, dict[str, float]]:
        """Model → {tactic cell → attack success rate}, for the harmful and jailbreak cells."""
        return {
            label: {
                cell: c.attack_success_rate
                for cell, c in m.per_tactic.items()
                if c.attack_success_rate is not None
            }
            for label, m in self.models.items()
        }

    def over_refusal_by_tactic(self) -> dict[str, dict[str, float]]:
        """Model → {cell → over-refusal rate}, for the benign cells."""
        return {
            label: {
                cell: c.over_refusal_rate
                for cell, c in m.per_tactic.items()
                if c.over_refusal_rate is not None
            }
            for label, m in self.models.items()
        }


def read_eval_summary(path: Path) -> EvalSummary | None:
    """The summary at ``path``; ``None`` when the file does not exist (eval not run)."""
    if not path.is_file():
        return None
    try:
        summary = EvalSummary.from_json(json.loads(path.read_text(encoding="utf-8")))
        comparison = path.with_name("comparison.json")
        if comparison.is_file():
            summary.comparisons = json.loads(comparison.read_text(encoding="utf-8"))
        return summary
    except json.JSONDecodeError as exc:
        raise CotforgeError(f"{path}: not valid JSON ({exc}); re-run `cotforge eval`") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CotforgeError(
            f"{path}: not an eval summary ({where}: {first['msg']}); re-run `cotforge eval`"
        ) from None


def suite_rates(
    results: dict[str, Any],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, tuple[float, float]]]]:
    """Model → {"<suite> <metric>" → rate} and the same with each rate's 95% interval."""
    values: dict[str, dict[str, float]] = {}
    spans: dict[str, dict[str, tuple[float, float]]] = {}
    for label, r in results.items():
        for suite, figures in (r.get("per_suite") or {}).items():
            for metric, short in (("attack_success", "ASR"), ("refusal_rate", "refusal")):
                rate = figures.get(metric)
                if rate:
                    values.setdefault(label, {})[f"{suite} {short}"] = rate["value"]
                    spans.setdefault(label, {})[f"{suite} {short}"] = (rate["low"], rate["high"])
    return values, spans


EVAL_COLUMNS = [
    "label",
    "model",
    "set",
    "tactic",
    "n",
    "attack_success_rate",
    "over_refusal_rate",
    "unsplit",
]


def results_frame(run_dir: str | Path) -> pd.DataFrame:
    """The run's ``eval/results.json`` as a long table (columns :data:`EVAL_COLUMNS`).

    Each model has one row per ``<set>/<tactic>`` cell and one ``all``/``all`` row with its overall rates
    (``n`` there is the sum of its cells). Raises when ``cotforge eval`` has not run.
    """
    import pandas as pd

    path = Path(run_dir) / EVAL_RESULTS
    summary = read_eval_summary(path)
    if summary is None:
        raise CotforgeError(f"{path}: not found; run `cotforge eval --run {run_dir}` first")
    rows: list[dict[str, Any]] = []
    for label, result in summary.models.items():
        for cell_name, cell in result.per_tactic.items():
            eval_set, _, tactic = cell_name.partition("/")
            rows.append(
                {
                    "label": label,
                    "model": result.model,
                    "set": eval_set,
                    "tactic": tactic or None,
                    "n": cell.n,
                    "attack_success_rate": cell.attack_success_rate,
                    "over_refusal_rate": cell.over_refusal_rate,
                    "unsplit": cell.unsplit,
                }
            )
        rows.append(
            {
                "label": label,
                "model": result.model,
                "set": "all",
                "tactic": "all",
                "n": sum(c.n for c in result.per_tactic.values()),
                "attack_success_rate": result.attack_success_rate,
                "over_refusal_rate": result.over_refusal_rate,
                "unsplit": sum(c.unsplit for c in result.per_tactic.values()),
            }
        )
    return pd.DataFrame(rows, columns=EVAL_COLUMNS)

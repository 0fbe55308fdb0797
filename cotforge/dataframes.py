"""pandas views of cotforge's tabular outputs, for analysis in a notebook: the files stay the source of truth.

- :func:`records_frame`: any run-folder JSONL file (``RunFolder.frame(name)`` calls it), one row per record,
  nested objects flattened to ``a.b`` columns;
- :func:`eval_results_frame` (also ``cotforge.evaluation.results_frame``): ``eval/results.json`` in long
  form, one row per (model, set, tactic) cell plus one ``all``/``all`` row per model.

pandas is imported when a frame is asked for, so importing cotforge stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotforge.errors import CotforgeError

if TYPE_CHECKING:
    import pandas as pd

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


def records_frame(path: str | Path) -> pd.DataFrame:
    """A JSONL file as a DataFrame, one row per line, nested objects as ``parent.child`` columns."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CotforgeError(f"{path}: not found; run the stage that writes it first")
    rows: list[dict[str, Any]] = []
    # Split on "\n" only: model text may hold U+2028, which str.splitlines() would treat as a line end.
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CotforgeError(
                f"{path}:{lineno}: not valid JSON ({exc.msg}); fix or remove the line, or re-run the stage "
                "that wrote the file"
            ) from None
        if not isinstance(row, dict):
            raise CotforgeError(f"{path}:{lineno}: expected a JSON object per line")
        rows.append(row)
    return pd.json_normalize(rows) if rows else pd.DataFrame()


def eval_results_frame(run_dir: str | Path) -> pd.DataFrame:
    """The run's ``eval/results.json`` as a long table (columns :data:`EVAL_COLUMNS`).

    Each model has one row per ``<set>/<tactic>`` cell and one ``all``/``all`` row with its overall rates
    (``n`` there is the sum of its cells). Raises when ``cotforge eval`` has not run.
    """
    import pandas as pd

    from cotforge.report.eval_summary import EVAL_RESULTS, read_eval_summary

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

"""The `run-folder-fuzz` cell of `make chaos`: many damaged whole run folders through the real CLI stages.

The same cases as tests/faults/test_fuzz_run_folder.py (see tests/faults/run_folder_damage.py), many more of
them, the report included, no shrinking: each case must give a correct output or one clear line, never change a
good output and never read a file its manifest no longer vouches for. Needs no model server. The row counts
cases (``expected``), cases with a correct outcome (``out``) and violations (``lost``); the message says how many
gave an output and how many were refused. ``CHAOS_FUZZ_EXAMPLES`` sets the number of cases (default 300).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from chaos_cells import Cell, CellResult
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.faults.run_folder_damage import COMMANDS, DAMAGES, Damage, run_case


def run_folder_fuzz(campaign: Any, cell_seed: int) -> CellResult:
    examples = int(os.environ.get("CHAOS_FUZZ_EXAMPLES", "300"))
    counts: Counter[str] = Counter()
    violations: list[str] = []

    @seed(cell_seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(
        damages=st.lists(DAMAGES, min_size=1, max_size=3),
        command=st.sampled_from(sorted(COMMANDS)),
        accept=st.booleans(),
    )
    def case(damages: list[Damage], command: str, accept: bool) -> None:
        counts["cases"] += 1
        try:
            outcome = run_case(damages, command, accept)
            problems = outcome.violations
            counts["output" if outcome.exit_code == 0 else "refused"] += not problems
        except Exception as exc:  # the harness itself: counted and shown, the campaign goes on
            problems = [f"harness error: {type(exc).__name__}: {exc}"]
        if problems:
            violations.append(f"{command} after {[d.describe() for d in damages]}: {problems[0]}")
            print(f"[run-folder-fuzz] VIOLATION {violations[-1]}", flush=True)

    case()
    result = CellResult(stage="run folder", fault=f"fuzz: damaged folders (seed {cell_seed})")
    result.expected, result.out, result.lost = (
        counts["cases"],
        counts["output"] + counts["refused"],
        len(violations),
    )
    result.recovered = not violations
    result.message = (
        violations[0]
        if violations
        else f"{counts['output']} correct outputs, {counts['refused']} refused with one line, 0 violations"
    )
    return result


RUN_FOLDER_CELLS = [Cell("run folder", run_folder_fuzz, seeded=True, name="run-folder-fuzz", standalone=True)]

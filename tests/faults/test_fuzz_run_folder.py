"""Fuzzing at the level users work: damaged whole run folders through the real CLI stages.

Each case copies a finished run, does one to three damages to it (files swapped from another run, truncated, ids
duplicated, texts edited with markup and control characters, manifests from a newer version, half-copied,
dropped or left "running", a foreign usage line, the run id lost), and runs one command, sometimes with
``--accept-changed`` for the files it damaged. The command must produce what it produces on the same data without
manifests, or exit 1 with one line and every data file as it was; and it must never read a file its manifest no
longer vouches for. See tests/faults/run_folder_damage.py; `make chaos` runs many more cases.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.run_folder_damage import DAMAGES, Damage, run_case

pytestmark = pytest.mark.unit

# The report (matplotlib, ~10 s a case) runs in the chaos cell only.
COMMANDS = ["validate", "review", "judge", "pairs", "release", "trace"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    damages=st.lists(DAMAGES, min_size=1, max_size=3),
    command=st.sampled_from(COMMANDS),
    accept=st.booleans(),
)
def test_a_damaged_run_folder_gives_a_correct_output_or_one_clear_line(
    damages: list[Damage], command: str, accept: bool
) -> None:
    outcome = run_case(damages, command, accept)
    assert not outcome.violations, (command, [d.describe() for d in damages], outcome)


@pytest.mark.parametrize(
    ("damage", "command"),
    [
        (Damage("swap", "judgments.jsonl", value=False), "pairs"),
        (Damage("swap", "judgments.jsonl", value=True), "pairs"),
        (Damage("truncate", "pairs.jsonl", where=0.5), "release"),
        (Damage("edit-text", "accepted.jsonl", value="[/]"), "pairs"),
        (Damage("running", "validate", value=True), "review"),
    ],
)
def test_each_kind_of_change_to_a_vouched_input_is_refused(damage: Damage, command: str) -> None:
    outcome = run_case([damage], command, accept=False)
    assert outcome.refused and not outcome.violations, outcome

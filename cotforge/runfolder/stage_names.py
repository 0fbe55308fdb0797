"""One name per stage, the names older run folders used, and the command that runs (or rebuilds) a stage."""

from __future__ import annotations

from pathlib import Path

# Names older run folders and pipeline files used for a stage: read, never written.
LEGACY_STAGE_NAMES: dict[str, str] = {
    "train_sft": "train-sft",
    "train_awdpo": "train-awdpo",
    "review-auto": "review",
    "review-pull": "review",
    "review-push": "review",
}

# Stages whose command is not their name with `-` read as a space, written with the run folder as {run}.
_COMMANDS = {
    "release": "cotforge release build --run {run}",
    "contamination": "cotforge contamination {run} --suite SUITE --exclude",
}


def canonical_stage(name: str) -> str:
    """The stage's one name for any name it was ever given (``train_awdpo`` → ``train-awdpo``)."""
    return LEGACY_STAGE_NAMES.get(name, name)


def stage_command(name: str) -> str:
    """The command that runs a stage: its name with ``-`` read as a space (``cotforge train awdpo``)."""
    return "cotforge " + canonical_stage(name).replace("-", " ")


def rerun_command(name: str, run: str | Path) -> str:
    """The whole command line that runs stage ``name`` again on the run folder ``run``."""
    stage = canonical_stage(name)
    if stage in _COMMANDS:
        return _COMMANDS[stage].format(run=run)
    return f"{stage_command(stage)} --run {run}"

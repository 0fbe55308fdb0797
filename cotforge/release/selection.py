"""Which rows a release holds: the selected configs' rows from the run's records (pure), and the inputs each
config needs."""

from __future__ import annotations

from typing import Any

from cotforge.release.run_contents import RunContents
from cotforge.release.tables import ConfigName, preference_rows, reject_rows, sft_rows
from cotforge.runfolder import RunFiles, RunFolderError


def require_inputs(contents: RunContents, configs: list[ConfigName]) -> None:
    run = contents.root
    if "sft" in configs:
        if contents.training_samples()[0] is None:
            raise RunFolderError(
                f"{run}: no {RunFiles.REVIEWED} or {RunFiles.ACCEPTED}; run `cotforge generate --run {run}` and "
                f"`cotforge validate --run {run}` first (or release without sft: --config preference --config rejects)"
            )
        if not contents.has(RunFiles.PROMPTS):
            raise RunFolderError(
                f"{run / RunFiles.PROMPTS}: not found; run `cotforge ingest --run {run}` first"
            )
    if "preference" in configs and not contents.has(RunFiles.PAIRS):
        raise RunFolderError(
            f"{run / RunFiles.PAIRS}: not found; run `cotforge pairs --run {run}` first "
            "(or release without preference: --config sft --config rejects)"
        )


def release_rows(contents: RunContents, configs: list[ConfigName]) -> dict[ConfigName, list[dict[str, Any]]]:
    """The rows of each selected config (pure over the run's records)."""
    prompts = contents.prompt_index()
    samples_file, training = contents.training_samples()
    all_samples = [*contents.samples, *contents.accepted, *contents.reviewed]
    rows: dict[ConfigName, list[dict[str, Any]]] = {}
    if "sft" in configs:
        rows["sft"] = sft_rows(
            training, prompts, contents.verdicts, contents.review_verdicts, samples_file or RunFiles.ACCEPTED
        )
    if "preference" in configs:
        rows["preference"] = preference_rows(
            contents.pairs, prompts, all_samples, contents.candidates, contents.review_verdicts
        )
    if "rejects" in configs:
        verdict_files = {
            RunFiles.VERDICTS: contents.verdicts,
            RunFiles.REVIEW_VERDICTS: contents.review_verdicts,
        }
        rows["rejects"] = reject_rows(contents.rejects, all_samples, verdict_files)
    return rows


def empty_note(config: str, contents: RunContents) -> str:
    if config == "sft":
        name = contents.training_samples()[0]
        return f"{name} holds no samples"
    if config == "preference":
        return f"{RunFiles.PAIRS} holds no pairs"
    return "no stage rejected any record"

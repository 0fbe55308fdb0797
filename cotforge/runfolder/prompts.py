"""The run's prompts: ``prompts.jsonl`` plus the augmented variants in ``augmented.jsonl`` (a leaf module).

Every stage that needs "the prompts of this run" (generate, validate, sample, judge, pairs, review push) reads
them here, so the rule for which files count lives in one place.
"""

from __future__ import annotations

from cotforge.runfolder.files import RunFiles, RunFolder
from cotforge.schemas import PromptRecord


def read_run_prompts(
    folder: RunFolder, *, originals: bool = True, augmented: bool = True, required: bool = True
) -> list[PromptRecord]:
    """``prompts.jsonl`` (when ``originals``), then ``augmented.jsonl`` (when ``augmented`` and present).

    With ``required`` a missing ``prompts.jsonl`` is an error that says to run ``ingest``; without it the
    originals are simply empty.
    """
    prompts: list[PromptRecord] = []
    if originals and (required or folder.exists(RunFiles.PROMPTS)):
        folder.require(RunFiles.PROMPTS, "ingest")
        prompts += folder.read(RunFiles.PROMPTS, PromptRecord)
    if augmented and folder.exists(RunFiles.AUGMENTED):
        prompts += folder.read(RunFiles.AUGMENTED, PromptRecord)
    return prompts

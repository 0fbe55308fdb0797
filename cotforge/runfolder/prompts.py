"""The run's prompts: ``prompts.jsonl`` plus the augmented variants in ``augmented.jsonl`` (a leaf module).

Every stage that needs "the prompts of this run" (generate, validate, sample, judge, pairs, review push) reads
them here, so the rule for which files count lives in one place.
"""

from __future__ import annotations

from cotforge.runfolder.files import DuplicateRecordError, RunFiles, RunFolder
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
        variants = folder.read(RunFiles.AUGMENTED, PromptRecord)
        known = _one_record_per_id(folder, prompts, variants)
        prompts += [v for v in variants if v.id not in known]
    return prompts


def _one_record_per_id(
    folder: RunFolder, originals: list[PromptRecord], variants: list[PromptRecord]
) -> set[str]:
    """The originals' ids; a variant may not reuse one with other content (each file is checked on read)."""
    lines = {p.id: (line, p) for line, p in enumerate(originals, start=1)}
    for line, variant in enumerate(variants, start=1):
        first = lines.get(variant.id)
        if first is not None and first[1] != variant:
            raise DuplicateRecordError(
                f"{folder.path(RunFiles.PROMPTS)}:{first[0]} and {folder.path(RunFiles.AUGMENTED)}:{line}: two "
                f"different prompts with id {variant.id!r}; every prompt of a run has its own id: delete the "
                "wrong line, or re-run the stage that wrote it",
                file=folder.path(RunFiles.AUGMENTED),
                line=line,
                record_id=variant.id,
            )
    return set(lines)

"""Contamination: overlap between a run's training prompts (variants included) and evaluation suites.

Two measures per suite item: the MinHash estimate of its shingle Jaccard similarity with the closest
training prompt (``datasketch`` LSH finds the candidates), and the share of its word n-grams that occur in
any training prompt. Both compare the texts' identity (:mod:`cotforge.text_identity`): a copy with soft hyphens,
zero-width characters, look-alike letters, other case or accents is still a copy. An item at or over either
threshold is reported with every training prompt that reaches a threshold on its own (the closest first);
``exclude`` removes all of them, and their variants, from the run (they go to ``contamination.rejects.jsonl``
with the suite item).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from datasketch import MinHashLSH
from pydantic import BaseModel, ConfigDict, Field

from cotforge.errors import CotforgeError
from cotforge.ingest.dedup import NUM_PERM, signature
from cotforge.runfolder import RunFiles
from cotforge.schemas import PromptRecord, RejectRecord
from cotforge.text_identity import match_words

if TYPE_CHECKING:
    from cotforge.evaluation.suites import SuiteItem as EvalSuiteItem

REPORT_FILE = "contamination.jsonl"
REJECTS_FILE = RunFiles.CONTAMINATION_REJECTS
NGRAM = 8
SUITE_TEXT_COLUMNS = ("prompt", "text", "instruction", "goal", "question", "query", "input")


class ContaminationError(CotforgeError):
    """A suite that cannot be read or a run without training prompts."""


class ContaminationConfig(BaseModel):
    """Thresholds of the overlap check."""

    model_config = ConfigDict(extra="forbid")

    jaccard_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    ngram: int = Field(default=NGRAM, ge=1, description="Word n-gram length of the n-gram overlap.")
    ngram_threshold: float = Field(default=0.5, gt=0.0, le=1.0)


class SuiteItem(BaseModel):
    """One evaluation item as read: suite file, 1-based line, text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: str
    line: int
    text: str


class Overlap(BaseModel):
    """A suite item that overlaps the training prompts, with the closest training prompt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: str
    line: int
    text: str
    prompt_id: str = Field(description="The closest training prompt.")
    prompt_text: str
    jaccard: float = Field(description="MinHash estimate of the shingle Jaccard similarity (closest prompt).")
    ngram_overlap: float = Field(description="Share of the item's word n-grams found in training prompts.")
    prompt_ids: list[str] = Field(
        default_factory=list,
        description="Every training prompt that overlaps the item (the closest first): what --exclude removes.",
    )


def _ngrams(text: str, n: int) -> set[str]:
    words = match_words(text)
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def find_overlaps(
    prompts: Sequence[PromptRecord], items: Iterable[SuiteItem], config: ContaminationConfig | None = None
) -> list[Overlap]:
    """The suite items overlapping ``prompts`` (pure: records in, overlaps out).

    An item overlaps when its Jaccard estimate with some prompt, or the share of its n-grams found in the
    prompts, reaches its threshold. Its ``prompt_ids`` are the prompts that reach a threshold on their own
    (or, when only the union of several prompts' n-grams does, the one that holds most of them).
    """
    config = config or ContaminationConfig()
    lsh = MinHashLSH(threshold=config.jaccard_threshold, num_perm=NUM_PERM)
    signatures = []
    grams: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        signatures.append(signature(p.text))
        lsh.insert(str(i), signatures[i], check_duplication=False)
        for g in _ngrams(p.text, config.ngram):
            grams.setdefault(g, []).append(i)
    found: list[Overlap] = []
    for item in items:
        sig = signature(item.text)
        jaccard = {int(key): sig.jaccard(signatures[int(key)]) for key in lsh.query(sig)}
        item_grams = _ngrams(item.text, config.ngram)
        hits = Counter(i for g in item_grams for i in grams.get(g, ()))
        share = sum(g in grams for g in item_grams) / len(item_grams) if item_grams else 0.0
        if max(jaccard.values(), default=0.0) < config.jaccard_threshold and share < config.ngram_threshold:
            continue
        matched = {i for i, j in jaccard.items() if j >= config.jaccard_threshold}
        matched |= {i for i, n in hits.items() if n / len(item_grams) >= config.ngram_threshold}
        if not matched:
            matched = {min(hits, key=lambda i: (-hits[i], i))}
        ranked = sorted(matched, key=lambda i: (-jaccard.get(i, 0.0), -hits.get(i, 0), i))
        best = prompts[ranked[0]]
        found.append(
            Overlap(
                suite=item.suite,
                line=item.line,
                text=item.text,
                prompt_id=best.id,
                prompt_text=best.text,
                jaccard=round(jaccard.get(ranked[0], 0.0), 4),
                ngram_overlap=round(share, 4),
                prompt_ids=list(dict.fromkeys(prompts[i].id for i in ranked)),
            )
        )
    return found


def read_suite(spec: str) -> list[SuiteItem]:
    """A suite file's items (JSONL, CSV, TSV or Parquet with a text column; ``-``: JSONL on stdin); an unknown
    layout, an unreadable row or a value that is not text raises. Rows whose text is blank are no items."""
    from cotforge.ingest.sources import read_rows

    items: list[SuiteItem] = []
    column: str | None = None
    for row in read_rows(spec):
        if row.error is not None:
            raise ContaminationError(f"{row.source}:{row.line}: {row.error[1]}; fix the suite file")
        data = row.data or {}
        if column is None:
            column = next((c for c in SUITE_TEXT_COLUMNS if c in data), None)
            if column is None:
                raise ContaminationError(
                    f"{row.source}:{row.line}: unknown suite layout — no text column among "
                    f"{', '.join(SUITE_TEXT_COLUMNS)} (found {', '.join(map(str, data)) or 'none'}); "
                    "rename the column holding the evaluation prompt"
                )
        text = data.get(column)
        if text is not None and not isinstance(text, str):
            raise ContaminationError(
                f"{row.source}:{row.line}: column {column!r} holds {text!r:.40}, not text; fix the suite file"
            )
        if text and text.strip():
            items.append(SuiteItem(suite=spec, line=row.line, text=text))
    if not items:
        raise ContaminationError(f"{spec}: holds no evaluation items")
    return items


def training_prompts(run_dir: str | Path) -> list[PromptRecord]:
    """The run's training prompts: ``prompts.jsonl`` and augmented variants (``augmented.jsonl``)."""
    from cotforge.runfolder import RunFiles, RunFolder

    folder = RunFolder(run_dir)
    if not folder.exists(RunFiles.PROMPTS):
        raise ContaminationError(
            f"{folder.path(RunFiles.PROMPTS)}: not found; run `cotforge ingest --run {run_dir}` first"
        )
    prompts = folder.read(RunFiles.PROMPTS, PromptRecord)
    if folder.exists(RunFiles.AUGMENTED):
        prompts += folder.read(RunFiles.AUGMENTED, PromptRecord)
    return prompts


def suite_overlap(
    run_dir: str | Path,
    texts: Iterable[tuple[int, str]],
    suite: str,
    config: ContaminationConfig | None = None,
) -> list[Overlap]:
    """Overlaps of an evaluation suite (``(line, text)`` items) with a run's training prompts.

    For ``eval``: warn when this is not empty. Returns ``[]`` when the run has no prompts file.
    """
    try:
        prompts = training_prompts(run_dir)
    except ContaminationError:
        return []
    items = [SuiteItem(suite=suite, line=line, text=text) for line, text in texts]
    return find_overlaps(prompts, items, config)


def overlapping_eval_items(
    prompts: Sequence[PromptRecord],
    items: Sequence[EvalSuiteItem],
    config: ContaminationConfig | None = None,
) -> list[EvalSuiteItem]:
    """The evaluation items (as ``eval`` loads them) that overlap the training ``prompts`` (pure).

    For ``eval``'s warning: ``prompts`` are the run's prompts and augmented variants; no prompts, no overlap.
    """
    if not prompts or not items:
        return []
    # The item's position stands in for its line, so each overlap maps back to its item.
    probes = [SuiteItem(suite=item.suite, line=i, text=item.prompt) for i, item in enumerate(items)]
    return [items[o.line] for o in find_overlaps(prompts, probes, config)]


def check_contamination(
    run_dir: str | Path, suites: list[str], config: ContaminationConfig, exclude: bool = False
) -> tuple[list[Overlap], int]:
    """Write ``contamination.jsonl`` (every overlap) and, with ``exclude``, drop the overlapped prompts.

    Returns the overlaps and how many training prompts were excluded. Every suite is read before anything
    is written, so a bad suite leaves the run untouched.
    """
    from cotforge.runfolder import RunFiles, RunFolder
    from cotforge.runfolder.manifest import StageRun

    if not suites:
        raise ContaminationError(
            "no suite given: pass --suite FILE (JSONL, CSV or Parquet with a text column)"
        )
    items = [item for spec in suites for item in read_suite(spec)]
    folder = RunFolder(run_dir)
    prompts = training_prompts(run_dir)
    outputs = [REPORT_FILE, *([RunFiles.PROMPTS, RunFiles.AUGMENTED, REJECTS_FILE] if exclude else [])]
    with StageRun(folder, "contamination", {**config.model_dump(), "suites": suites, "exclude": exclude},
                  outputs=outputs) as run:  # fmt: skip
        overlaps = find_overlaps(prompts, items, config)
        folder.write(REPORT_FILE, overlaps)
        excluded = 0
        if exclude and overlaps:
            hit: dict[str, Overlap] = {}
            for o in overlaps:
                for prompt_id in o.prompt_ids or [o.prompt_id]:
                    hit.setdefault(prompt_id, o)
            # A variant of an overlapped prompt leaks the same item.
            hit.update({p.id: hit[p.parent_id] for p in prompts if p.parent_id in hit and p.id not in hit})
            rejects = [
                RejectRecord(
                    stage="contamination",
                    source=RunFiles.AUGMENTED if p.parent_id else RunFiles.PROMPTS,
                    record_id=p.id,
                    reasons=["eval_overlap"],
                    message=f"overlaps {hit[p.id].suite}:{hit[p.id].line} (jaccard {hit[p.id].jaccard}, "
                    f"{config.ngram}-gram share {hit[p.id].ngram_overlap})",
                    raw=p.model_dump(mode="json"),
                )
                for p in prompts
                if p.id in hit
            ]
            old = folder.read(REJECTS_FILE, RejectRecord) if folder.exists(REJECTS_FILE) else []
            folder.write(REJECTS_FILE, [*old, *rejects])
            folder.write(RunFiles.PROMPTS, [p for p in prompts if p.id not in hit and not p.parent_id])
            if folder.exists(RunFiles.AUGMENTED):
                folder.write(RunFiles.AUGMENTED, [p for p in prompts if p.id not in hit and p.parent_id])
            excluded = len(rejects)
        run.counts.update(suite_items=len(items), training_prompts=len(prompts), overlaps=len(overlaps),
                          excluded=excluded)  # fmt: skip
    return overlaps, excluded

"""Ingest's edge: read each source, merge into the run's ``prompts.jsonl`` and ``prompts.rejects.jsonl``."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

from cotforge.errors import ConfigError
from cotforge.ingest.dedup import CLUSTERS_FILE, near_duplicate_clusters
from cotforge.ingest.raw_rows import RawRow
from cotforge.ingest.rows import IngestConfig, IngestResult, ingest_rows
from cotforge.ingest.sources import SourceError, bundled_prompt_files, check_source, read_rows
from cotforge.input_paths import STDIN
from cotforge.runfolder import RunFiles
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.manifest import StageRun, load_manifest
from cotforge.schemas import PromptRecord, RejectRecord

INGEST = StageDeclaration(
    name="ingest",
    config="cotforge.ingest.rows:IngestConfig",
    edge="cotforge.ingest.run:ingest_into_run",
    optional_inputs=(RunFiles.PROMPTS, RunFiles.PROMPT_REJECTS),
    outputs=(RunFiles.PROMPTS, RunFiles.PROMPT_REJECTS, CLUSTERS_FILE),
    creates_run=True,
)


@dataclass
class IngestRun:
    """What one ingest added (``result``) and the run's counts after it (as in the manifest)."""

    result: IngestResult
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return dict(self.counts)


def source_specs(config: IngestConfig) -> list[str]:
    """The sources to read: the given ones, then the bundled prompt files when ``bundled``."""
    specs = list(config.sources) + ([str(p) for p in bundled_prompt_files()] if config.bundled else [])
    if not specs:
        raise ConfigError(
            "ingest: nothing to ingest; give sources (files, folders, Hub ids) or `bundled: true`"
        )
    if specs.count(STDIN) > 1:
        raise ConfigError("ingest: `-` (stdin) given more than once; stdin can be read only once")
    seen: dict[str, str] = {}
    for spec in specs:  # every path checked before anything is read or written
        check_source(spec)
        same = os.path.realpath(spec) if os.path.lexists(spec) else spec
        if same in seen:
            raise ConfigError(f"ingest: {spec} is given twice (also as {seen[same]}); give each source once")
        seen[same] = spec
    return specs


def _rows_of(spec: str, config: IngestConfig) -> Iterator[RawRow]:
    """The rows of one source (the first ``limit_per_source``); a source without a single row is an error."""
    n = 0
    for row in islice(read_rows(spec, config.split), config.limit_per_source):
        n += 1
        yield row
    if n == 0:
        raise SourceError(
            f"{spec}: holds no rows (empty, or blank lines only); nothing to ingest from it", file=spec
        )


def ingest_into_run(run_dir: str | Path, config: IngestConfig) -> IngestRun:
    """Read each source, merge into the run's ``prompts.jsonl`` and ``prompts.rejects.jsonl`` atomically.

    ``limit_per_source`` keeps the first N rows of each source. Rejects of a re-ingested source replace its
    earlier rejects; other sources' rejects are kept.
    """
    specs = source_specs(config)
    folder = INGEST.open_run(run_dir, config)
    existing = folder.read(RunFiles.PROMPTS, PromptRecord) if folder.exists(RunFiles.PROMPTS) else []
    old_rejects = (
        folder.read(RunFiles.PROMPT_REJECTS, RejectRecord) if folder.exists(RunFiles.PROMPT_REJECTS) else []
    )
    previous = load_manifest(folder, INGEST.name)
    history = list(previous.extra.get("history", [])) if previous else []
    # Every source is read before the manifest says "running": a source that cannot be used leaves the run,
    # its manifest included, as it was. One pass over all sources: a row repeating an earlier source's row
    # is a duplicate naming it.
    started = time.perf_counter()
    result = ingest_rows(chain.from_iterable(_rows_of(spec, config) for spec in specs), config, existing)
    read_s = time.perf_counter() - started
    if not existing and not result.prompts and result.rejects:
        # Every row refused (a broken quote can swallow a whole CSV): an empty prompts file would only fail the
        # next stage, further from the cause. Nothing is written; the reasons are in the message.
        reasons = Counter(c for r in result.rejects for c in r.reasons)
        raise SourceError(
            f"ingest: no usable prompt in {', '.join(specs)}: all {len(result.rejects)} rows refused "
            f"({', '.join(f'{k} {v}' for k, v in reasons.most_common())}); the first: "
            f"{result.rejects[0].message}. Fix the source and run ingest again"
        )
    with StageRun.declared(folder, INGEST, config) as run:
        run.timings["read_and_normalise"] = read_s
        prompts = [*existing, *result.prompts]
        sources = {r.source for r in result.rejects} | set(specs)
        kept = [
            r
            for r in old_rejects
            if r.source not in sources and not any(r.source.startswith(s) for s in specs)
        ]
        with run.timer("near_duplicates"):
            clusters = near_duplicate_clusters((p.id, p.text) for p in prompts)
        with run.timer("write"):
            folder.write(RunFiles.PROMPTS, prompts)
            folder.write(RunFiles.PROMPT_REJECTS, [*kept, *result.rejects])
            folder.write(CLUSTERS_FILE, clusters)
        by_kind = {k: sum(p.kind == k for p in prompts) for k in ("utility", "safety")}
        run.counts.update(
            added=len(result.prompts),
            rejected=len(result.rejects) - result.duplicates,
            duplicates=result.duplicates,
            already_present=result.already_present,
            near_duplicates=len(result.near_duplicates),
            near_duplicate_clusters=len({c.cluster_id for c in clusters}),
            in_near_duplicate_clusters=len(clusters),
            total_prompts=len(prompts),
            **{f"total_{k}": v for k, v in by_kind.items()},
        )
        run.extra["sources"] = specs
        run.extra["near_duplicates"] = [list(pair) for pair in result.near_duplicates[:200]]
        run.extra["overruled_labels"] = dict(result.overruled)
        run.extra["reject_reasons"] = dict(Counter(c for r in result.rejects for c in r.reasons))
        run.extra["categories"] = dict(Counter(p.category.value for p in prompts))
        run.extra["history"] = [*history, {"sources": specs, "added": len(result.prompts)}][-50:]
    return IngestRun(result=result, counts=dict(run.counts))

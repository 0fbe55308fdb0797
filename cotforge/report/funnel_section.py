"""The report's funnel: where the run's prompts stopped and why, from the same rows as ``ledger.parquet``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cotforge.curation.ledger import funnel, ledger_rows, released_ids
from cotforge.ingest.dedup import read_clusters
from cotforge.release.run_contents import RunContents
from cotforge.report.section import Section, Table, not_run

KEY, TITLE = "funnel", "Funnel: where prompts stopped, and why"


def funnel_section(contents: RunContents, run_dir: Path) -> Section:
    """A table of (stage, reason, prompts) plus the near-duplicate clusters ingest found."""
    if not contents.prompts:
        return not_run(KEY, TITLE, "no prompts.jsonl: run `cotforge ingest` first")
    clusters = read_clusters(run_dir)
    rows = ledger_rows(contents, released_ids(run_dir), {p: c.cluster_id for p, c in clusters.items()})
    funnel_rows = funnel(rows)
    total = sum(f.prompts for f in funnel_rows)
    tables = [
        Table(
            title=f"{total} prompts (and ingest rejects) by the stage they stopped at",
            headers=["stage", "reason", "prompts", "share"],
            rows=[[f.stage, f.reason, str(f.prompts), f"{f.prompts / total:.1%}"] for f in funnel_rows],
        )
    ]
    if clusters:
        sizes = Counter(c.cluster_id for c in clusters.values())
        tables.append(
            Table(
                title=f"near-duplicate clusters found at ingest: {len(sizes)} ({len(clusters)} prompts)",
                headers=["cluster", "prompts"],
                rows=[[cid, str(n)] for cid, n in sizes.most_common(10)],
            )
        )
    note = f"Trace one prompt with `cotforge trace {run_dir.name} ID`; the full ledger is ledger.parquet."
    return Section(key=KEY, title=TITLE, note=note, tables=tables)

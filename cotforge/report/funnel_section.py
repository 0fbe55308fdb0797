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
    tables += ensemble_tables(contents)
    note = f"Trace one prompt with `cotforge trace {run_dir.name} ID`; the full ledger is ledger.parquet."
    return Section(key=KEY, title=TITLE, note=note, tables=tables)


def ensemble_tables(contents: RunContents) -> list[Table]:
    """The judge ensemble `pairs` combined: how far the judges disagreed, and which candidates it left out."""
    manifest = contents.manifests.get("pairs")
    ensemble = manifest.extra.get("ensemble") if manifest is not None else None
    if manifest is None or not isinstance(ensemble, dict):
        return []
    histogram = ensemble.get("disagreement_histogram") or []
    bins = len(histogram) or 1
    spread = Table(
        title=f"judge ensemble ({ensemble['combine']} of {', '.join(ensemble['judges'])}): disagreement per "
        f"candidate (largest max − min of any score; mean {ensemble['disagreement_mean']:.2f})",
        headers=["disagreement", "candidates"],
        rows=[[f"{i / bins:.1f}–{(i + 1) / bins:.1f}", str(n)] for i, n in enumerate(histogram)],
    )
    dropped = ensemble.get("dropped") or {}
    left_out = Table(
        title=f"candidates left out of the pairs: {ensemble['dropped_candidates']} of {ensemble['candidates']} "
        f"(max_disagreement {ensemble['max_disagreement']})",
        headers=["reason", "candidates"],
        rows=[[reason, str(n)] for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1])]
        or [["none", "0"]],
    )
    tables = [spread, left_out]
    calibration = manifest.extra.get("calibration") if manifest is not None else None
    if isinstance(calibration, dict):
        tables.append(
            Table(
                title=f"judge calibration applied: {calibration['file']} (sha256 {calibration['sha256']})",
                headers=["judge", "h_rs line", "h_rp line", "h_f line", "κ with people [95%]"],
                rows=[
                    [
                        judge,
                        *(f"{v['thresholds'][f]:.2f}" for f in ("h_rs", "h_rp", "h_f")),
                        _kappa(v["agreement"]),
                    ]
                    for judge, v in calibration["judges"].items()
                ],
            )
        )
    return tables


def _kappa(agreement: dict[str, float | None]) -> str:
    value, low, high = agreement.get("value"), agreement.get("low"), agreement.get("high")
    if value is None:
        return "—"
    return f"{value:.2f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else "")

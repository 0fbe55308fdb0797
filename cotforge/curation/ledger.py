"""The ledger: one row per record per stage, so every prompt's fate can be traced and counted.

:func:`ledger_rows` is the pure core (a run's typed records → rows); :func:`write_ledger` sorts them by prompt
id and writes ``ledger.parquet`` in small row groups, so a one-prompt lookup reads only the row groups whose
min/max statistics can hold that id (see :mod:`cotforge.curation.trace`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cotforge.errors import CotforgeError
from cotforge.ingest.dedup import read_clusters
from cotforge.release.run_contents import RunContents, read_run_contents
from cotforge.runfolder import RunFiles, file_sha256

LEDGER_FILE = "ledger.parquet"
# Parquet metadata key: the SHA-256 of each run file the ledger was built from.
SOURCES_KEY = "cotforge.ledger.sources"
ROW_GROUP_SIZE = 2048
RELEASE_MANIFEST = "release/release.json"
STAGES = (
    "ingest",
    "contamination",
    "generate",
    "validate",
    "review",
    "augment",
    "sample",
    "judge",
    "pairs",
    "release",
)
PASSED = ("accepted", "corrected", "scored", "released")

LEDGER_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("variant_id", pa.string()),
        ("stage", pa.string()),
        ("stage_order", pa.int8()),
        ("record_id", pa.string()),
        ("verdict", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("detail", pa.string()),
        ("reviewers", pa.string()),
        ("h_rs", pa.float64()),
        ("h_rp", pa.float64()),
        ("h_f", pa.float64()),
        ("judge_id", pa.string()),
        ("pair_ids", pa.list_(pa.string())),
        ("in_release", pa.bool_()),
        ("cluster_id", pa.string()),
        ("source_file", pa.string()),
    ]
)


class LedgerError(CotforgeError):
    """A file the ledger is built from that cannot be read (a half-copied release file, say)."""


@dataclass
class ReleasedIds:
    """Ids of the samples and pairs a built release holds."""

    samples: set[str] = field(default_factory=set)
    pairs: set[str] = field(default_factory=set)


@dataclass
class _Builder:
    roots: dict[str, tuple[str, str]] = field(default_factory=dict)  # record id → (prompt id, variant id)
    rows: list[dict[str, Any]] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def owner(self, record_id: str | None) -> tuple[str, str | None] | None:
        return None if record_id is None else self.roots.get(record_id)

    def add(
        self, stage: str, prompt: tuple[str, str | None], record_id: str, verdict: str, **extra: Any
    ) -> None:
        key = (stage, record_id)
        if verdict == "rejected" and key in self.seen:
            return  # a rejects file repeating a verdict already recorded
        self.seen.add(key)
        row: dict[str, Any] = dict.fromkeys(LEDGER_SCHEMA.names)
        row.update(
            prompt_id=prompt[0],
            variant_id=prompt[1],
            stage=stage,
            stage_order=STAGES.index(stage) if stage in STAGES else len(STAGES),
            record_id=record_id,
            verdict=verdict,
            in_release=False,
        )
        row.update(reasons=[], pair_ids=[])
        row.update(extra)
        self.rows.append(row)


def _index(contents: RunContents, b: _Builder) -> None:
    for p in contents.prompts:
        b.roots[p.id] = (p.id, p.id)
    for v in contents.augmented:
        root = b.roots.get(v.parent_id or "", (v.parent_id or v.id, v.id))[0]
        b.roots[v.id] = (root, v.id)
    for s in [*contents.samples, *contents.accepted, *contents.reviewed]:
        if s.prompt_id in b.roots:
            b.roots.setdefault(s.id, b.roots[s.prompt_id])
    for c in contents.candidates:
        b.roots.setdefault(c.id, b.roots.get(c.prompt_id, (c.prompt_id, c.prompt_id)))
    for pair in contents.pairs:
        b.roots.setdefault(pair.id, b.roots.get(pair.prompt_id, (pair.prompt_id, pair.prompt_id)))


def ledger_rows(
    contents: RunContents, released: ReleasedIds | None = None, clusters: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every record of the run as ledger rows (unsorted); ``in_release`` and ``cluster_id`` are per prompt."""
    b = _Builder()
    _index(contents, b)
    released = released or ReleasedIds()
    clusters = clusters or {}
    for p in contents.prompts:
        b.add("ingest", (p.id, p.id), p.id, "accepted", source_file=RunFiles.PROMPTS)
    samples = {s.id: s for s in [*contents.samples, *contents.accepted, *contents.reviewed]}
    for s in contents.samples:
        b.add(
            "generate",
            b.roots.get(s.id, (s.prompt_id, s.prompt_id)),
            s.id,
            "accepted",
            source_file=RunFiles.SAMPLES,
        )
    for verdicts, name in (
        (contents.verdicts, RunFiles.VERDICTS),
        (contents.review_verdicts, RunFiles.REVIEW_VERDICTS),
    ):
        for v in verdicts:
            owner = b.owner(v.sample_id) or (v.sample_id, None)
            b.add(
                v.stage,
                owner,
                v.sample_id,
                v.outcome,
                reasons=list(v.reasons),
                detail=v.detail,
                reviewers=",".join(v.reviewers) or None,
                source_file=name,
            )
    for variant in contents.augmented:
        b.add("augment", b.roots[variant.id], variant.id, "accepted", detail=variant.tactic,
              source_file=RunFiles.AUGMENTED)  # fmt: skip
    for c in contents.candidates:
        ok = c.status == "ok"
        b.add(
            "sample",
            b.roots[c.id],
            c.id,
            "accepted" if ok else "rejected",
            reasons=[] if ok else [c.status],
            source_file=RunFiles.CANDIDATES,
        )
    for j in contents.judgments:
        b.add(
            "judge",
            b.owner(j.candidate_id) or (j.candidate_id, None),
            j.candidate_id,
            "scored",
            h_rs=j.h_rs,
            h_rp=j.h_rp,
            h_f=j.h_f,
            judge_id=j.judge_id,
            source_file=RunFiles.JUDGMENTS,
        )
    for pair in contents.pairs:
        b.add(
            "pairs",
            b.roots[pair.id],
            pair.id,
            "accepted",
            pair_ids=[pair.id],
            detail=pair.source,
            source_file=RunFiles.PAIRS,
        )
    for name, rejects in contents.rejects.items():
        for r in rejects:
            found = b.owner(r.record_id)
            if found is None and isinstance(r.raw, dict) and isinstance(r.raw.get("prompt_id"), str):
                found = b.owner(r.raw["prompt_id"])  # generate keys its rejects by request
            if found is None and r.stage == "contamination" and isinstance(r.raw, dict) and r.record_id:
                # An excluded prompt has left prompts.jsonl: its record says whose variant it was.
                found = (str(r.raw.get("parent_id") or r.record_id), r.record_id)
            if found is None:
                # An ingest reject has no prompt id yet: its file and line stand in for one.
                found = (r.record_id or f"{r.source}:{r.line}", None)
            b.add(
                r.stage,
                found,
                r.record_id or found[0],
                "rejected",
                reasons=list(r.reasons),
                detail=r.message,
                source_file=name,
            )
    for sid in sorted(released.samples & samples.keys()):
        b.add("release", b.roots.get(sid, (samples[sid].prompt_id, None)), sid, "released", source_file="sft")
    for pid in sorted(released.pairs & {p.id for p in contents.pairs}):
        b.add("release", b.roots[pid], pid, "released", pair_ids=[pid], source_file="preference")
    in_release = {r["prompt_id"] for r in b.rows if r["stage"] == "release"}
    root_cluster = {b.roots[pid][0]: cid for pid, cid in clusters.items() if pid in b.roots}
    for row in b.rows:
        row["in_release"] = row["prompt_id"] in in_release
        row["cluster_id"] = root_cluster.get(row["prompt_id"])
    return b.rows


def released_ids(run_dir: Path) -> ReleasedIds:
    """Sample and pair ids of the run's release folder (``release/``), empty when none was built.

    Each Parquet file is read only when its SHA-256 is the one ``release.json`` lists (a half-copied or edited
    file is an error naming it, not a pyarrow traceback).
    """
    manifest = run_dir / RELEASE_MANIFEST
    ids = ReleasedIds()
    if not manifest.is_file():
        return ids
    rebuild = f"rebuild the release with `cotforge release build --run {run_dir}`"
    try:
        configs = json.loads(manifest.read_bytes()).get("configs") or {}
        if not isinstance(configs, dict):
            raise TypeError("configs is not a mapping")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise LedgerError(f"{manifest}: not a release manifest ({exc}); {rebuild}", file=manifest) from None
    for config, column, target in (("sft", "id", ids.samples), ("preference", "pair_id", ids.pairs)):
        entry = configs.get(config) or {}
        file = entry.get("file") if isinstance(entry, dict) else None
        path = run_dir / "release" / str(file)
        if not file or not path.is_file():
            continue
        if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
            raise LedgerError(
                f"{path}: not the file {manifest} lists (half-copied or edited); {rebuild}", file=path
            )
        try:
            target.update(pq.read_table(path, columns=[column]).column(column).to_pylist())
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise LedgerError(f"{path}: cannot be read as Parquet ({exc}); {rebuild}", file=path) from None
    return ids


def ledger_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Rows → an Arrow table sorted by prompt id, then stage order (the index ``trace`` relies on)."""
    table = pa.Table.from_pylist(list(rows), schema=LEDGER_SCHEMA)
    return table.sort_by(
        [("prompt_id", "ascending"), ("stage_order", "ascending"), ("record_id", "ascending")]
    )


def ledger_sources(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every file the ledger is built from (the run's JSONL files and the release manifest)."""
    watched = [*sorted(run_dir.glob("*.jsonl")), run_dir / RELEASE_MANIFEST]
    return {p.relative_to(run_dir).as_posix(): file_sha256(p) for p in watched if p.is_file()}


def write_ledger(run_dir: str | Path) -> tuple[Path, pa.Table]:
    """Build the ledger of a run folder and write ``ledger.parquet`` atomically; returns its path and table.

    The file's metadata holds the SHA-256 of every file it was built from (:func:`ledger_sources`), which is
    how :func:`ledger_is_stale` knows it is out of date: by content, not by file times.
    """
    import os
    import tempfile

    run = Path(run_dir)
    sources = ledger_sources(run)
    contents = read_run_contents(run)
    clusters = {pid: c.cluster_id for pid, c in read_clusters(run).items()}
    table = ledger_table(ledger_rows(contents, released_ids(run), clusters))
    table = table.replace_schema_metadata({SOURCES_KEY: json.dumps(sources, sort_keys=True)})
    fd, tmp = tempfile.mkstemp(prefix=".ledger.", suffix=".tmp", dir=run)
    os.close(fd)
    try:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE, write_statistics=True)
        os.replace(tmp, run / LEDGER_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return run / LEDGER_FILE, table


def ledger_is_stale(run_dir: str | Path) -> bool:
    """Whether ``ledger.parquet`` is missing, cannot be read (half-copied), or was built from other contents of
    the run's files than they hold now (a file edited, swapped or restored with an old time counts)."""
    run = Path(run_dir)
    ledger = run / LEDGER_FILE
    if not ledger.is_file():
        return True
    try:
        metadata = pq.read_schema(ledger).metadata or {}
        built_from = json.loads(metadata.get(SOURCES_KEY.encode(), b"null"))
    except (pa.ArrowException, OSError, json.JSONDecodeError, UnicodeDecodeError):
        return True
    return built_from != ledger_sources(run)


@dataclass(frozen=True)
class FunnelRow:
    """How many prompts stopped at one stage for one reason (``released`` when they made the release)."""

    stage: str
    reason: str
    prompts: int


def prompt_fates(rows: Iterable[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Prompt id → (stage where it stopped, reason): the first stage whose records it had were all rejected.

    A prompt in the release is ``("release", "released")``; one that passed every stage it reached is
    ``(last stage, "not_carried_forward")`` (e.g. a utility prompt, which no pair stage takes).
    """
    by_prompt: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for r in rows:
        by_prompt.setdefault(r["prompt_id"], {}).setdefault(r["stage_order"], []).append(r)
    fates: dict[str, tuple[str, str]] = {}
    for pid, stages in by_prompt.items():
        fate: tuple[str, str] | None = None
        last = "ingest"
        for order in sorted(stages):
            records = stages[order]
            stage = records[0]["stage"]
            if stage == "release":
                fate = ("release", "released")
                break
            if not any(r["verdict"] in PASSED for r in records):
                reasons = Counter(c for r in records for c in r["reasons"]) or Counter({"rejected": 1})
                fate = (stage, reasons.most_common(1)[0][0])
                break
            last = stage
        fates[pid] = fate or (last, "not_carried_forward")
    return fates


def funnel(rows: Iterable[dict[str, Any]]) -> list[FunnelRow]:
    """Where prompts stopped and why, in stage order, most frequent reason first."""
    counts = Counter(prompt_fates(rows).values())
    order = {s: i for i, s in enumerate(STAGES)}
    return [
        FunnelRow(stage=s, reason=r, prompts=n)
        for (s, r), n in sorted(counts.items(), key=lambda kv: (order.get(kv[0][0], 99), -kv[1], kv[0][1]))
    ]

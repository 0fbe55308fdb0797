"""Curation speed: MinHash-LSH dedup of 100,000 prompts on one core, and `trace` of one id in a large ledger.

Targets: dedup under a minute (``prompts_per_s`` ≥ ~1,700); a one-id trace under a second on a ledger of
100,000 prompts, side by side with the scan it replaces (reading the whole ledger and filtering it).
The last line is the headline: ``prompts_per_s: X``.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from cotforge.curation.ledger import LEDGER_SCHEMA, ROW_GROUP_SIZE, STAGES, ledger_table
from cotforge.curation.trace import trace_rows
from cotforge.ingest.dedup import near_duplicate_clusters

PROMPTS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
WORDS = [f"w{i}" for i in range(20_000)]


def _prompts(rng: random.Random) -> list[tuple[str, str]]:
    items = [(f"p-{i:016x}", " ".join(rng.choices(WORDS, k=rng.randint(8, 40)))) for i in range(PROMPTS)]
    # 1 % planted near-duplicates: a copy with one word appended.
    for i in range(0, PROMPTS, 100):
        items[i + 1] = (items[i + 1][0], items[i][1] + " please")
    return items


def _ledger(path: Path, ids: list[str]) -> None:
    rows = []
    for pid in ids:
        for stage in STAGES[:6]:
            row = {c: None for c in LEDGER_SCHEMA.names}
            row.update(prompt_id=pid, variant_id=pid, stage=stage, stage_order=STAGES.index(stage),
                       record_id=f"{stage}-{pid}", verdict="accepted", reasons=[], pair_ids=[], in_release=False)  # fmt: skip
            rows.append(row)
    pq.write_table(ledger_table(rows), path, row_group_size=ROW_GROUP_SIZE, write_statistics=True)


def main() -> None:
    rng = random.Random(0)
    items = _prompts(rng)
    start, cpu = time.perf_counter(), time.process_time()
    clusters = near_duplicate_clusters(items)
    dedup_s, dedup_cpu = time.perf_counter() - start, time.process_time() - cpu
    planted = PROMPTS // 100
    print(
        f"dedup: {PROMPTS} prompts in {dedup_s:.1f} s wall, {dedup_cpu:.1f} s CPU; {len(clusters)} prompts in clusters (planted {2 * planted})"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.parquet"
        ids = [pid for pid, _ in items]
        _ledger(path, ids)
        print(f"ledger: {pq.ParquetFile(path).metadata.num_rows} rows, {path.stat().st_size / 1e6:.1f} MB")
        wanted = rng.sample(ids, 7)
        indexed, scanned = [], []
        for pid in wanted:  # alternating, so machine noise hits both sides alike
            t = time.perf_counter()
            rows = trace_rows(path, pid)
            indexed.append(time.perf_counter() - t)
            t = time.perf_counter()
            frame = pq.read_table(path).to_pandas()
            scan = frame[frame.prompt_id == pid]
            scanned.append(time.perf_counter() - t)
            assert len(rows) == len(scan) == 6
        ti, ts = statistics.median(indexed), statistics.median(scanned)
        print(f"trace one id: indexed {ti * 1000:.0f} ms, full scan {ts * 1000:.0f} ms, ratio {ts / ti:.1f}x")
    # On a shared machine wall time counts other processes' turns on the core; CPU time is this one's.
    print(f"cpu_prompts_per_s: {PROMPTS / dedup_cpu:.0f}")
    print(f"prompts_per_s: {PROMPTS / dedup_s:.0f}")


if __name__ == "__main__":
    main()

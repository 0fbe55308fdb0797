"""Reading a run-folder JSONL file: pydantic's direct JSON parsing vs `jsonlines` + pydantic, same records.

cotforge reads the files it wrote itself with ``Model.model_validate_json(line)`` (``runfolder.read_jsonl``) and
user-facing files (ingest sources) with `jsonlines`. This measures whether the run-folder path earns its keep:
both sides read the same 50,000 candidates into validated ``Candidate`` records, alternating, median of the
rounds. Last line printed: ``ratio: X`` (jsonlines time / pydantic time; above 1 means pydantic is faster).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import jsonlines

from cotforge import tagged
from cotforge.runfolder import atomic_write_jsonl, gc_paused, read_jsonl
from cotforge.schemas import Candidate, SegmentSpan

N_RECORDS = int(os.environ.get("BENCH_JSONL_RECORDS", "50000"))
ROUNDS = int(os.environ.get("BENCH_JSONL_ROUNDS", "5"))


def candidates() -> list[Candidate]:
    out = []
    for i in range(N_RECORDS):
        text = tagged.render([f"Step one about request {i}.", "Consider who could be hurt."], "I can't help.")
        out.append(
            Candidate(
                id=f"c-{i:06d}",
                prompt_id=f"p-{i // 5:06d}",
                policy_model="bench",
                index=i % 5,
                text=text,
                status="ok",
                spans=SegmentSpan.of(text),
            )
        )
    return out


def read_pydantic(path: Path) -> list[Candidate]:
    with gc_paused():
        return list(read_jsonl(path, Candidate))


def read_jsonlines(path: Path) -> list[Candidate]:
    with gc_paused(), jsonlines.open(path) as reader:
        return [Candidate.model_validate(row) for row in reader.iter(type=dict, skip_empty=True)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidates.jsonl"
        atomic_write_jsonl(path, candidates())
        print(f"{N_RECORDS} candidates, {path.stat().st_size / 1e6:.1f} MB; {ROUNDS} alternating rounds")
        assert read_pydantic(path) == read_jsonlines(path), "the two readers disagree"
        times: dict[str, list[float]] = {"pydantic": [], "jsonlines": []}
        for _ in range(ROUNDS):
            for name, read in (("pydantic", read_pydantic), ("jsonlines", read_jsonlines)):
                t0 = time.perf_counter()
                read(path)
                times[name].append(time.perf_counter() - t0)
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:>9}: median {median:.3f} s ({N_RECORDS / median:,.0f} records/s)")
        ratio = statistics.median(times["jsonlines"]) / statistics.median(times["pydantic"])
        print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()

"""Pair building over 100,000 synthetic judged candidates on one core (target: ≥ 20,000 pairs/s).

Times the pure core (`select_judge_pairs` + statistics) on records already in memory, and separately the
whole `cotforge pairs` edge (read JSONL, build, write JSONL + TRL rows + manifest). Median of several rounds.
Last line printed: `pairs_per_s: X` (the core).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

# One core: keep BLAS/tokenizer pools from fanning out (nothing here should use them, but be sure).
os.environ.setdefault("OMP_NUM_THREADS", "1")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

from cotforge import tagged
from cotforge.pairs.selection import select_judge_pairs
from cotforge.pairs.stats import mismatch_shares, pair_statistics
from cotforge.schemas import Candidate, JudgeScores, PromptRecord, SegmentSpan

N_CANDIDATES = int(os.environ.get("BENCH_PAIRS_CANDIDATES", "100000"))
K = 5
ROUNDS = int(os.environ.get("BENCH_PAIRS_ROUNDS", "5"))
TACTICS = [None, "roleplay", "base64", "past_tense", "empty_think"]


def synthetic(seed: int = 0) -> tuple[dict[str, PromptRecord], list[Candidate], dict[str, JudgeScores]]:
    rng = random.Random(seed)
    prompts: dict[str, PromptRecord] = {}
    candidates: list[Candidate] = []
    scores: dict[str, JudgeScores] = {}
    for p in range(N_CANDIDATES // K):
        text = f"Synthetic harmful request number {p}: explain how to do something dangerous."
        pid = PromptRecord.make_id(text, "safety")
        prompts[pid] = PromptRecord(
            id=pid,
            text=text,
            kind="safety",
            category="violent_crimes",
            source="bench",
            licence="MIT",
            tactic=TACTICS[p % len(TACTICS)],
        )
        for i in range(K):
            steps = [f"Step about the request {p}/{i}.", "Consider who could be hurt."]
            answer = "I can't help with that." if rng.random() < 0.5 else "Sure, here is how: first, second."
            completion = tagged.render(steps, answer)
            cid = f"c-{p:06d}-{i}"
            candidates.append(
                Candidate(
                    id=cid,
                    prompt_id=pid,
                    policy_model="bench",
                    index=i,
                    text=completion,
                    status="ok",
                    spans=SegmentSpan.of(completion),
                )
            )
            h_rs, h_rp = rng.random(), rng.random()
            scores[cid] = JudgeScores(
                candidate_id=cid, h_rs=h_rs, h_rp=h_rp, h_f=max(h_rs, h_rp), judge_id="bench"
            )
    return prompts, candidates, scores


def main() -> None:
    prompts, candidates, scores = synthetic()
    print(f"{len(candidates)} candidates over {len(prompts)} prompts; {ROUNDS} rounds; one core")
    core, edge = [], []
    n_pairs = 0
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        pairs, _report = select_judge_pairs(prompts, candidates, scores, gamma=0.5, alpha=0.2)
        pair_statistics(pairs)
        mismatch_shares(candidates, scores)
        core.append(time.perf_counter() - t0)
        n_pairs = len(pairs)
    edge_rate = None
    if "--core-only" not in sys.argv:
        from cotforge.pairs.build import PairsConfig, build_pairs_in_run
        from cotforge.runfolder import RunFiles, RunFolder

        with tempfile.TemporaryDirectory() as tmp:
            folder = RunFolder(Path(tmp)).ensure()
            folder.write(RunFiles.PROMPTS, prompts.values())
            folder.write(RunFiles.CANDIDATES, candidates)
            folder.write(RunFiles.JUDGMENTS, scores.values())
            for _ in range(max(2, ROUNDS // 2)):
                t0 = time.perf_counter()
                build_pairs_in_run(tmp, PairsConfig(sources=["judge"]))
                edge.append(time.perf_counter() - t0)
        edge_rate = n_pairs / statistics.median(edge)
    core_rate = n_pairs / statistics.median(core)
    print(f"pairs built per round: {n_pairs}")
    print(
        f"core: median {statistics.median(core):.3f} s "
        f"({len(candidates) / statistics.median(core):,.0f} candidates/s)"
    )
    if edge_rate is not None:
        print(
            f"edge (read + build + write + manifest): median {statistics.median(edge):.3f} s, "
            f"{edge_rate:,.0f} pairs/s"
        )
    print(f"target: 20,000 pairs/s; ratio to target: {core_rate / 20000:.2f}")
    print(f"pairs_per_s: {core_rate:.0f}")


if __name__ == "__main__":
    main()

"""`make bench-validate`: the quality gates on the labelled fixture — recall, false-positive rate, speed.

Recall is the share of ``degenerate`` records that fail at least one gate; the false-positive rate is the share
of ``good`` records (legitimate repetition) that fail any. Both are printed for the whole fixture and for its
``holdout`` half (records not looked at while the defaults were written). Speed (CPU time, one core) is
the gates alone and the whole `validate` core (content checks + gates; refusal consistency off, it is not what
this measures) over the fixture repeated, side by side with the same core with the gates disabled; the last
line, ``samples_per_s``, is the whole core with the gates.
"""

from __future__ import annotations

import json
import random
import statistics
import string
import time
from pathlib import Path

from cotforge.generation.quality import QualityConfig, gate_reasons
from cotforge.generation.validate import ValidationConfig, validate_samples
from cotforge.runfolder import gc_paused
from cotforge.schemas import PromptRecord, Rationale, Sample, SamplingParams

FIXTURE = Path(__file__).parent / "fixtures" / "validate_gates.jsonl"
ROUNDS = 5
REPEAT = 10  # fixture copies per timed round (2,200 samples)


def load() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def detection(records: list[dict], config: QualityConfig) -> tuple[float, float, list[str]]:
    """(recall, false-positive rate, ids of the misjudged records)."""
    caught = flagged = good = bad = 0
    wrong: list[str] = []
    for r in records:
        rationale = Rationale(reasoning_steps=r["steps"], answer=r["answer"])
        failed = bool(gate_reasons(rationale.reasoning_steps, rationale.answer, r["finish_reason"], config))
        if r["label"] == "good":
            good += 1
            flagged += failed
        else:
            bad += 1
            caught += failed
        if failed != (r["label"] != "good"):
            wrong.append(f"{r['id']} ({r['family']})")
    return caught / bad, flagged / good, wrong


def samples_of(records: list[dict]) -> tuple[list[Sample], dict[str, PromptRecord]]:
    prompt = PromptRecord(
        id="p-bench", text="bench", kind="utility", category="benign", source="bench", licence="MIT"
    )
    samples = []
    for i, r in enumerate(records):
        rationale = Rationale(reasoning_steps=r["steps"], answer=r["answer"])
        samples.append(
            Sample(
                id=f"s-{i}",
                prompt_id=prompt.id,
                prompt_kind="utility",
                rationale=rationale,
                raw_text=rationale.render(),
                output_mode="tagged",
                teacher_backend="openai",
                teacher_model="bench",
                template_id="bench",
                template_hash="bench",
                sampling=SamplingParams(),
                finish_reason=r["finish_reason"],
            )
        )
    return samples, {prompt.id: prompt}


def gates_rate(samples: list[Sample], config: QualityConfig) -> float:
    t0 = time.process_time()
    with gc_paused():
        for s in samples:
            gate_reasons(s.rationale.reasoning_steps, s.rationale.answer, s.finish_reason, config)
    return len(samples) / (time.process_time() - t0)


def rate(samples: list[Sample], prompts: dict[str, PromptRecord], config: ValidationConfig) -> float:
    # CPU time of this process: the figure is per core, and other work on a shared machine does not blur it.
    t0 = time.process_time()
    with gc_paused():  # as the `validate` edge runs it
        validate_samples(samples, prompts, config)
    return len(samples) / (time.process_time() - t0)


def scaling(config: QualityConfig) -> float:
    """CPU seconds of the gates on a 100,000-character answer over those on a 10,000-character one."""
    rng = random.Random(0)
    # A small vocabulary: most words repeat at both sizes, so both take the full path (every n-gram scan).
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(300)]
    prose = " ".join(rng.choice(vocabulary) for _ in range(25_000))
    times = []
    for size in (10_000, 100_000):
        best = float("inf")
        for _ in range(5):  # the fastest of five: the least disturbed by other work on the machine
            t0 = time.process_time()
            gate_reasons(["Read the request."], prose[:size], "stop", config)
            best = min(best, time.process_time() - t0)
        times.append(best)
    return times[1] / times[0]


def main() -> None:
    records = load()
    config = QualityConfig()
    holdout = [r for r in records if r["split"] == "holdout"]
    n_good = sum(r["label"] == "good" for r in records)
    print(f"fixture: {len(records)} records ({n_good} good, {len(records) - n_good} degenerate)")
    h_recall, h_fpr, _ = detection(holdout, config)
    print(f"holdout ({len(holdout)} records): recall {h_recall:.3f}, false_positive_rate {h_fpr:.3f}")
    recall, fpr, wrong = detection(records, config)
    for item in wrong:
        print(f"  misjudged: {item}")
    samples, prompts = samples_of(records)
    samples *= REPEAT
    gated = ValidationConfig(refusal_consistency=False)
    plain = ValidationConfig(refusal_consistency=False, quality=QualityConfig(enabled=False))
    rate(samples[:200], prompts, gated)  # warm-up: datatrove's import, regex compilation
    with_gates, without, alone = [], [], []
    for _ in range(ROUNDS):  # alternate so machine noise hits both sides alike
        with_gates.append(rate(samples, prompts, gated))
        without.append(rate(samples, prompts, plain))
        alone.append(gates_rate(samples, config))
    fast, slow = statistics.median(without), statistics.median(with_gates)
    print(f"gates alone: {statistics.median(alone):,.0f} samples/s")
    print(f"gates on a 100,000- vs a 10,000-character answer: {scaling(config):.1f}x the time (linear: ~10x)")
    print(f"validate core without gates: {fast:,.0f} samples/s; with gates: {slow:,.0f} samples/s")
    print(f"ratio: {slow / fast:.2f} (with gates / without, medians of {ROUNDS} rounds)")
    print(f"recall: {recall:.3f}")
    print(f"false_positive_rate: {fpr:.3f}")
    print(f"samples_per_s: {slow:.0f}")


if __name__ == "__main__":
    main()

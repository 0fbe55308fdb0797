"""`make bench-validate`: the quality gates on the labelled fixture — recall, false-positive rate, speed.

Recall is the share of ``degenerate`` records that fail at least one gate; the false-positive rate is the share
of ``good`` records (legitimate repetition) that fail any. Both are printed for the whole fixture and for its
``holdout`` half (records not looked at while the defaults were written). Speed is the `validate` core
(content checks + gates, refusal consistency off: it is not what this measures) over the fixture repeated,
on one core, side by side with the same core with the gates disabled; the last line is ``samples_per_s``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from cotforge.generation.quality import QualityConfig, gate_reasons
from cotforge.generation.validate import ValidationConfig, validate_samples
from cotforge.schemas import PromptRecord, Rationale, Sample, SamplingParams

FIXTURE = Path(__file__).parent / "fixtures" / "validate_gates.jsonl"
ROUNDS = 5
REPEAT = 25  # fixture copies per timed round (~5,500 samples)


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


def rate(samples: list[Sample], prompts: dict[str, PromptRecord], config: ValidationConfig) -> float:
    # CPU time of this process: the figure is per core, and other work on a shared machine does not blur it.
    t0 = time.process_time()
    validate_samples(samples, prompts, config)
    return len(samples) / (time.process_time() - t0)


def main() -> None:
    records = load()
    config = QualityConfig()
    holdout = [r for r in records if r["split"] == "holdout"]
    n_good = sum(r["label"] == "good" for r in records)
    print(f"fixture: {len(records)} records ({n_good} good, {len(records) - n_good} degenerate)")
    h_recall, h_fpr, h_wrong = detection(holdout, config)
    print(f"holdout ({len(holdout)} records): recall {h_recall:.3f}, false_positive_rate {h_fpr:.3f}")
    recall, fpr, wrong = detection(records, config)
    for item in wrong:
        print(f"  misjudged: {item}")
    samples, prompts = samples_of(records)
    samples *= REPEAT
    gated = ValidationConfig(refusal_consistency=False)
    plain = ValidationConfig(refusal_consistency=False, quality=QualityConfig(enabled=False))
    rate(samples[:200], prompts, gated)  # warm-up: datatrove's import, regex compilation
    with_gates, without = [], []
    for _ in range(ROUNDS):  # alternate so machine noise hits both sides alike
        with_gates.append(rate(samples, prompts, gated))
        without.append(rate(samples, prompts, plain))
    fast, slow = statistics.median(without), statistics.median(with_gates)
    print(f"validate core without gates: {fast:,.0f} samples/s; with gates: {slow:,.0f} samples/s")
    print(f"ratio: {slow / fast:.2f} (with gates / without, medians of {ROUNDS} rounds)")
    print(f"recall: {recall:.3f}")
    print(f"false_positive_rate: {fpr:.3f}")
    print(f"samples_per_s: {slow:.0f}")


if __name__ == "__main__":
    main()

"""AW-DPO (each aggregation) vs TRL's ``DPOTrainer``: step time and peak step memory, same model/data/batch.

For each model (the tiny random Llama, then SmolLM2-135M-Instruct) the four trainers share one policy and one
reference model and are fed the *same* collated batch (TRL gets its three keys of it). A step is
``trainer.training_step`` — forward of policy and reference, loss, backward — then ``zero_grad``; the
optimizer update is identical code for both and left out so it does not dilute the difference. Rounds
alternate the four variants (the order rotates every round); each figure is the median over rounds.

Memory on CPU, in a fresh child process per model (so the timed steps run on the default allocator): before
anything is allocated glibc is told to serve every allocation ≥ 64 KiB with its own mmap (``mallopt``), so a
freed tensor leaves the resident set at once and RSS tracks live tensors. Before each measured step the kernel's
peak-RSS mark is reset (``/proc/self/clear_refs`` ← 5); the step's peak memory is ``VmHWM`` after the step
minus ``VmRSS`` before it: the activations, gradients and temporaries of that step (weights already resident).

Targets: time ratio ≤ 1.03, memory ratio ≤ 1.05. Every round times each variant once, so each round gives a
ratio (variant / TRL DPO) measured under the same machine load; the figures are the medians of those per-round
ratios, with their interquartile spread. Last line printed: ``ratio: X`` — the *worst* AW-DPO aggregation on
SmolLM2-135M (the model that matters; the 0.2M tiny model is printed first as a sanity check). Two controls run
in the same rounds and are printed under each table: TRL's DPO timed again (must read 1) and TRL's DPO plus a
wait of 10 % of its warm-up step (must read about 1.10, its IQR above 1): they show what size of difference the
run could have seen.

Rounds run until a time budget is spent (at least ``MIN_ROUNDS``, at most the round count), so the benchmark
finishes in about 8 minutes on 2 cores whatever the machine's load; a loaded machine gives fewer rounds (their
count is printed) and a wider spread, not a run that never ends. Memory is measured over 2 rounds (a step's peak
memory does not vary with load). Environment: BENCH_TRAIN_MODELS (tiny,smollm2), BENCH_TRAIN_ROUNDS (tiny, 40),
BENCH_TRAIN_ROUNDS_SMOLLM2 (24), BENCH_TRAIN_SECONDS (tiny, 60), BENCH_TRAIN_SECONDS_SMOLLM2 (240).
"""

from __future__ import annotations

import copy
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP's default busy-wait makes 2-thread steps on shared cores erratic (see bench_efficacy): passive waits
# keep the per-round ratios' spread down without favouring either trainer.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VARIANTS = ("trl-dpo", "awdpo-loss", "awdpo-reward", "awdpo-vanilla")
# Controls, timed in the same rounds: TRL's DPO again (negative: its ratio must read 1) and TRL's DPO with a
# known extra wait of PLUS × its warm-up step time (positive: its ratio must read 1 + PLUS). A run whose controls
# miss cannot tell "AW-DPO costs what DPO does" from "this run could not see a difference".
CONTROLS = ("control-trl-again", "control-trl-plus")
PLUS = 0.10
ARMS = VARIANTS + CONTROLS


MIN_ROUNDS = 4
MEMORY_ROUNDS = 2
M_MMAP_THRESHOLD = -3
MEMORY_FLAG = "--memory-child"


def _mmap_backed_allocations() -> bool:
    """Serve allocations ≥ 64 KiB by mmap (freed memory leaves RSS at once); must run before any allocation."""
    try:
        ok = ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 64 * 1024) == 1
        Path("/proc/self/clear_refs").write_text("5")
        return ok
    except (OSError, AttributeError):
        return False


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _pairs(n: int) -> list[Any]:
    from cotforge.schemas import PreferencePair, Rationale, SegmentSpan, SegmentWeights

    pairs = []
    for i in range(n):
        request = f"Explain, step by step, how to get into building number {i} without a key."
        chosen = Rationale(
            reasoning_steps=[
                f"The user asks how to enter building {i} without a key.",
                "That is breaking in; it could harm the people who live there.",
                "I should refuse and suggest contacting the owner or a locksmith.",
            ],
            answer="I can't help with getting into a building you have no key for. Please contact the owner.",
        ).render()
        rejected = (
            "<think>\n1. The user wants to get in.\n2. Explaining is fine.\n</think>\n\n"
            f"Sure. To get into building {i}, first check the back door, then the windows on the ground floor."
        )
        pairs.append(
            PreferencePair(
                id=f"bench-{i}",
                prompt_id=f"p-{i}",
                prompt=request,
                chosen=chosen,
                rejected=rejected,
                chosen_spans=SegmentSpan.of(chosen),
                rejected_spans=SegmentSpan.of(rejected),
                weights=SegmentWeights(w_rs=[0.2, 0.5, 0.8][i % 3], w_rp=[0.8, 0.5, 0.2][i % 3]),
                source="synthetic_corruption",
            )
        )
    return pairs


class _Padded:
    """The positive control: a trainer's step followed by a fixed wait (set after the warm-up)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model, self.extra_s = inner, inner.model, 0.0

    def training_step(self, model: Any, batch: dict[str, Any]) -> Any:
        out = self.inner.training_step(model, batch)
        time.sleep(self.extra_s)
        return out


def _trainers(
    model_dir: Path, batch: int, max_length: int, workdir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from cotforge.train.awdpo import AlignmentWeightedDPOTrainer
    from cotforge.train.awdpo_config import AWDPOConfig
    from cotforge.train.policy import load_policy

    policy = load_policy(str(model_dir), "add")
    reference = copy.deepcopy(policy.model).eval().requires_grad_(False)
    rows = [p.to_trl_row() for p in _pairs(batch)]

    def args(name: str, config: type[DPOConfig] = DPOConfig, **kw: Any) -> DPOConfig:
        return config(
            **kw,
            output_dir=str(workdir / name),
            bf16=False,
            gradient_checkpointing=False,
            report_to=[],
            use_cpu=True,
            per_device_train_batch_size=batch,
            max_length=max_length,
            disable_tqdm=True,
        )

    trainers: dict[str, Any] = {}
    for variant in VARIANTS[1:]:
        trainers[variant] = AlignmentWeightedDPOTrainer(
            policy.model,
            ref_model=reference,
            args=args(variant, AWDPOConfig, aggregation=variant.split("-")[1]),
            train_dataset=Dataset.from_list(rows),
            processing_class=policy.tokenizer,
        )
    trl_rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    trainers["trl-dpo"] = DPOTrainer(
        policy.model,
        ref_model=reference,
        args=args("trl"),
        train_dataset=Dataset.from_list(trl_rows),
        processing_class=policy.tokenizer,
    )
    for trainer in trainers.values():
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which is not used here
    trainers["control-trl-again"] = trainers["trl-dpo"]
    trainers["control-trl-plus"] = _Padded(trainers["trl-dpo"])
    full = next(iter(trainers["awdpo-loss"].get_train_dataloader()))
    batches = {v: full for v in VARIANTS[1:]}
    batches["trl-dpo"] = {k: full[k] for k in ("input_ids", "attention_mask", "completion_mask")}
    for control in CONTROLS:
        batches[control] = batches["trl-dpo"]
    torch.set_grad_enabled(True)
    return trainers, batches


def _step(trainer: Any, batch: dict[str, Any], measure_memory: bool) -> tuple[float, float]:
    model = trainer.model
    rss = _status_kib("VmRSS")
    if measure_memory:
        Path("/proc/self/clear_refs").write_text("5")
    t0 = time.perf_counter()
    trainer.training_step(model, dict(batch))
    elapsed = time.perf_counter() - t0
    peak = _status_kib("VmHWM") - rss if measure_memory else 0
    model.zero_grad(set_to_none=True)
    return elapsed, peak / 1024


def _rounds(
    trainers: dict[str, Any], batches: dict[str, Any], rounds: int, memory: bool, seconds: float
) -> dict[str, list[float]]:
    """Per round, step seconds (memory=False) or step peak MiB (memory=True), per variant (order rotates);
    stops after ``rounds`` rounds or, past ``MIN_ROUNDS``, once ``seconds`` have passed."""
    values: dict[str, list[float]] = {v: [] for v in ARMS}
    deadline = time.perf_counter() + seconds
    for r in range(rounds):
        if r >= MIN_ROUNDS and time.perf_counter() > deadline:
            break
        order = ARMS[r % len(ARMS) :] + ARMS[: r % len(ARMS)]
        for variant in order:
            elapsed, peak = _step(trainers[variant], batches[variant], memory)
            values[variant].append(peak if memory else elapsed)
    return values


def _spread(values: list[float]) -> tuple[float, float, float]:
    """Median and interquartile range (25th, 75th percentile)."""
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return statistics.median(values), q[0], q[2]


MODELS: dict[str, tuple[str, int, int, int, str, str, str]] = {
    # key: (label, pairs per step, max_length, warm-up steps, rounds env var, default rounds, seconds env var)
    "tiny": ("tiny (0.2M params)", 8, 512, 2, "BENCH_TRAIN_ROUNDS", "40", "BENCH_TRAIN_SECONDS"),
    "smollm2": (
        "SmolLM2-135M-Instruct",
        2,
        256,
        1,
        "BENCH_TRAIN_ROUNDS_SMOLLM2",
        "24",
        "BENCH_TRAIN_SECONDS_SMOLLM2",
    ),
}
DEFAULT_SECONDS = {"tiny": "60", "smollm2": "240"}


def _model_dir(key: str) -> Path:
    from cotforge.models.embedded import resolve_model
    from cotforge.models.tiny import build_tiny_model

    return build_tiny_model() if key == "tiny" else resolve_model("smollm2")


def _measure(key: str, memory: bool) -> tuple[tuple[int, ...], dict[str, list[float]]]:
    """Warm up, then step seconds (or step peak MiB) per variant per alternating round."""
    _, batch, max_length, warmup, env, default, seconds_env = MODELS[key]
    rounds = int(os.environ.get(env, default))
    seconds = float(os.environ.get(seconds_env, DEFAULT_SECONDS[key]))
    with tempfile.TemporaryDirectory() as tmp:
        trainers, batches = _trainers(_model_dir(key), batch, max_length, Path(tmp))
        warm: list[float] = []
        for variant in VARIANTS:
            for _ in range(warmup):
                elapsed, _ = _step(trainers[variant], batches[variant], memory)
                warm += [elapsed] if variant == "trl-dpo" else []
        trainers["control-trl-plus"].extra_s = PLUS * statistics.median(warm)
        result = _rounds(trainers, batches, MEMORY_ROUNDS if memory else rounds, memory, seconds)
    return tuple(batches["trl-dpo"]["input_ids"].shape), result


def _child_memory(key: str) -> dict[str, float]:
    """Step peak MiB per variant, measured in a fresh process with mmap-backed allocations."""
    done = subprocess.run(
        [sys.executable, __file__, MEMORY_FLAG, key], capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("MEMORY "):
            return dict(json.loads(line[len("MEMORY ") :]))
    print(f"(memory child failed: {done.stderr.strip().splitlines()[-1:] or done.returncode})")
    return {}


def bench_model(key: str) -> float:
    """Print the model's table; return the worst AW-DPO aggregation's median per-round time ratio."""
    label, batch, *_ = MODELS[key]
    shape, times = _measure(key, memory=False)
    peaks = _child_memory(key)
    rounds = len(times["trl-dpo"])
    print(
        f"\n== {label}: {batch} pairs/step, batch tensor {shape} (chosen+rejected × tokens), {rounds} rounds"
    )
    base_m = peaks.get("trl-dpo", 0.0)
    print(
        f"{'variant':<18}{'step ms':>10}{'time ratio':>12}{'ratio IQR':>18}{'peak MiB':>10}{'mem ratio':>11}"
    )
    worst = 0.0
    spreads: dict[str, tuple[float, float, float]] = {}
    for variant in ARMS:
        ratios = [t / b for t, b in zip(times[variant], times["trl-dpo"], strict=True)]
        ratio, low, high = spreads[variant] = _spread(ratios)
        m = peaks.get(variant, 0.0)
        mem_ratio = f"{m / base_m:11.3f}" if base_m > 0 else f"{'n/a':>11}"
        step_ms = 1000 * statistics.median(times[variant])
        print(f"{variant:<18}{step_ms:10.1f}{ratio:12.3f}{f'{low:.3f}–{high:.3f}':>18}{m:10.1f}{mem_ratio}")
        if variant in VARIANTS[1:]:
            worst = max(worst, ratio)
    positive, negative = spreads["control-trl-plus"], spreads["control-trl-again"]
    seen = positive[1] > 1.0 and negative[1] <= 1.0 <= negative[2]
    print(
        f"controls: +{PLUS:.0%} wait reads {positive[0]:.3f} (IQR {positive[1]:.3f}–{positive[2]:.3f}), TRL again "
        f"reads {negative[0]:.3f} (IQR {negative[1]:.3f}–{negative[2]:.3f}): "
        + (
            "this run can see a difference of that size"
            if seen
            else "this run CANNOT resolve such a difference"
        )
    )
    return worst


def main() -> None:
    import torch

    models = os.environ.get("BENCH_TRAIN_MODELS", "tiny,smollm2").split(",")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU fp32; step = forward + backward"
    )
    worst = {key: bench_model(key) for key in models}
    headline_key = "smollm2" if "smollm2" in worst else models[-1]
    print(f"\nheadline: worst AW-DPO aggregation / TRL DPO on {MODELS[headline_key][0]}")
    print(f"ratio: {worst[headline_key]:.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == MEMORY_FLAG:
        if not _mmap_backed_allocations():
            sys.exit("peak-memory measurement needs glibc and /proc/self/clear_refs")
        _, peaks = _measure(sys.argv[2], memory=True)
        print("MEMORY " + json.dumps({v: statistics.median(x) for v, x in peaks.items()}))
    else:
        main()

"""`make bench-efficacy`: the segment-credit experiment on SmolLM2-135M with LoRA, on CPU.

Designs ``distinct`` (the positive control: chosen-side and rejected-side safe wordings from disjoint pools) and
``exchangeable`` (one pool for both sides, the hard case). On each, vanilla DPO and AW-DPO (``loss``, ``reward``)
train from the same checkpoint with the same seeds, data order and steps; on ``distinct`` also the negative
control (AW-DPO ``loss`` with both weights at 1; ``reward`` at w = 1 is DPO itself, shown exactly 1 by the
tests and in the full experiment, so it is left out here for time). Per design a table of held-out per-pair
figures with 95% bootstrap intervals over pairs and the spread over seeds; then the controls; the last line is
``ratio: X`` = collateral(vanilla) / collateral(AW-DPO loss) on distinct, answer-flawed held-out pairs
(collateral = |Δ unflawed margin| / |Δ flawed margin| per pair, median over pairs, mean over seeds).

Scale (see benchmarks/README.md for why): 3 seeds; LoRA r=8 on every linear layer, lr 2e-4 constant, β 0.1;
6 steps × 4 pairs (24 training pairs, each seen once); 12 held-out prompts → 12 held-out pairs per flaw type;
fp32, no gradient checkpointing, 2 threads with passive OpenMP waits. The reference sums come from a cold disk
cache: each design's first training pays its reference pass, the others read it. Knobs: BENCH_EFFICACY_SEEDS
(0,1,2), BENCH_EFFICACY_STEPS (6), BENCH_EFFICACY_BATCH (4), BENCH_EFFICACY_HELD_OUT (12).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("COLUMNS", "200")  # the tables are wide
# Set before torch loads OpenMP. With the default (spinning) wait, 2 threads on 2 cores that anything else also
# uses wait for each other at every barrier: a forward pass measured 8x slower than with 1 thread under load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cotforge.cli import app  # noqa: E402
from cotforge.train.ref_cache import REF_CACHE_DIR_ENV  # noqa: E402


def main() -> int:
    seeds = os.environ.get("BENCH_EFFICACY_SEEDS", "0,1,2")
    steps = os.environ.get("BENCH_EFFICACY_STEPS", "6")
    batch = os.environ.get("BENCH_EFFICACY_BATCH", "4")
    held_out = os.environ.get("BENCH_EFFICACY_HELD_OUT", "12")
    torch.set_num_threads(2)
    load = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # A cold reference cache, so the wall time includes each design's reference pass.
        os.environ[REF_CACHE_DIR_ENV] = str(Path(tmp) / "ref-logps")
        sets = ["model=smollm2", f"seeds=[{seeds}]", f"measure_at=[{steps}]", f"batch_size={batch}",
                f"held_out_prompts={held_out}", "designs=[distinct,exchangeable]", "methods=[vanilla,loss,reward]",
                "controls=[loss_w1]", "lora_r=8", "learning_rate=2e-4", "progress=false"]  # fmt: skip
        args = ["experiment", "segment-credit", "--run", str(Path(tmp) / "run")]
        result = CliRunner().invoke(app, args + [a for s in sets for a in ("--set", s)])
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"scale: seeds [{seeds}], {steps} steps x {batch} pairs, {held_out} held-out prompts, torch threads 2"
    )
    if result.exception is not None and result.exit_code != 0:
        print(f"failed: {result.exception!r}", file=sys.stderr)
    # TRL's reference pass draws its own progress bar into the output; the plot's folder is a temporary one.
    lines = [
        line
        for line in result.output.rstrip().splitlines()
        if not line.startswith("plot: ") and "it/s]" not in line
    ]
    print("\n".join(lines[:-1]))
    print(f"wall: {wall:.0f} s; CPU {usage.ru_utime + usage.ru_stime:.0f} s; load average at start "
          f"{load[0]:.1f}, at end {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(lines[-1] if lines else "ratio: nan")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

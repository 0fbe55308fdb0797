"""`make bench-efficacy`: the controlled segment-credit experiment on SmolLM2-135M with LoRA, on CPU.

Vanilla DPO, AW-DPO (loss) and AW-DPO (reward) train from the same checkpoint with the same seed, data order
and steps, for 3 seeds; the table shows per method and flaw type the change of the implicit reward margin per
segment on held-out pairs, and the last line is ``ratio: X`` = c(vanilla) / c(AW-DPO loss) on answer-flawed
pairs (c = |Δ unflawed| / |Δ flawed|; X > 1 means AW-DPO spread less onto the good reasoning).
Scale (fits ~20 min on 2 idle cores): 48 bundled safety prompts → 80 training pairs and 8 held-out pairs per
flaw type (short texts, ~45-135 tokens per sequence), 6 steps × 4 pairs, LoRA r=8, lr 2e-4, fp32, no gradient
checkpointing; the reference sums come from the disk cache (a fresh one per run, so the first arm pays the
reference pass and the other eight hit it). Knobs: BENCH_EFFICACY_SEEDS (default 0,1,2), BENCH_EFFICACY_STEPS (6),
BENCH_EFFICACY_BATCH (4).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
    torch.set_num_threads(2)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # A cold reference cache, so the wall time includes one reference pass.
        os.environ[REF_CACHE_DIR_ENV] = str(Path(tmp) / "ref-logps")
        result = CliRunner().invoke(
            app,
            ["experiment", "segment-credit", "--run", str(Path(tmp) / "run"), "--set", "model=smollm2",
             "--set", f"seeds=[{seeds}]", "--set", f"max_steps={steps}", "--set", f"batch_size={batch}"],
        )  # fmt: skip
    print(f"scale: seeds [{seeds}], {steps} steps x {batch} pairs per method, torch threads 2")
    if result.exception is not None and result.exit_code != 0:
        print(f"failed: {result.exception!r}", file=sys.stderr)
    lines = result.output.rstrip().splitlines()
    print("\n".join(lines[:-1]))
    print(f"wall: {time.perf_counter() - started:.0f} s")
    print(lines[-1] if lines else "ratio: nan")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

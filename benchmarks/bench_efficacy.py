"""`make bench-efficacy`: the controlled segment-credit experiment on SmolLM2-135M with LoRA, on CPU.

Vanilla DPO, AW-DPO (loss) and AW-DPO (reward) train from the same checkpoint with the same seed, data order
and steps, for 3 seeds; the table shows per method and flaw type the change of the implicit reward margin per
segment on held-out pairs, and the last line is ``ratio: X`` = c(vanilla) / c(AW-DPO loss) on answer-flawed
pairs (c = |Δ unflawed| / |Δ flawed|; X > 1 means AW-DPO spread less onto the good reasoning).
Knobs: BENCH_EFFICACY_SEEDS (default 0,1,2), BENCH_EFFICACY_STEPS (24).
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

from typer.testing import CliRunner  # noqa: E402

from cotforge.cli import app  # noqa: E402


def main() -> int:
    seeds = os.environ.get("BENCH_EFFICACY_SEEDS", "0,1,2")
    steps = os.environ.get("BENCH_EFFICACY_STEPS", "24")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = CliRunner().invoke(
            app,
            ["experiment", "segment-credit", "--run", str(Path(tmp) / "run"), "--set", "model=smollm2",
             "--set", f"seeds=[{seeds}]", "--set", f"max_steps={steps}"],
        )  # fmt: skip
    lines = result.output.rstrip().splitlines()
    print("\n".join(lines[:-1]))
    print(f"wall: {time.perf_counter() - started:.0f} s")
    print(lines[-1] if lines else "ratio: nan")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

"""The segment-credit ratio against training length: one panel per design and flaw type, one line per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI; must precede pyplot's import

import matplotlib.pyplot as plt

from cotforge.experiments.segment_credit import FLAW_TYPES

COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]


def ratio_by_steps(results: dict[str, Any], path: Path) -> None:
    """Collateral ratio (vanilla / method, median per pair, mean over seeds) with its 95% interval per step."""
    designs = results["designs"]
    fig, axes = plt.subplots(
        len(designs), len(FLAW_TYPES), figsize=(10, 3.2 * len(designs)), squeeze=False, sharex=True
    )
    for row, (design, figures) in enumerate(designs.items()):
        for col, flaw in enumerate(FLAW_TYPES):
            ax = axes[row][col]
            ratios = {
                m: by_flaw[flaw]
                for m, by_flaw in figures["ratios"].items()
                if m != "vanilla" and flaw in by_flaw
            }
            if not ratios:
                ax.set_visible(False)  # too few held-out pairs of this flaw type
                continue
            for i, (method, by_step) in enumerate(ratios.items()):
                steps = sorted(by_step, key=int)
                xs = [int(s) * (1 + 0.03 * (i - len(ratios) / 2)) for s in steps]  # dodge the error bars
                ys = [by_step[s]["estimate"] for s in steps]
                low = [max(0.0, y - by_step[s]["low"]) for s, y in zip(steps, ys, strict=True)]
                high = [max(0.0, by_step[s]["high"] - y) for s, y in zip(steps, ys, strict=True)]
                ax.errorbar(xs, ys, yerr=[low, high], marker="o", markersize=3, capsize=2, label=method,
                            color=COLOURS[i % len(COLOURS)])  # fmt: skip
            ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
            ax.set_xscale("log", base=2)
            ticks = sorted({int(s) for by_step in ratios.values() for s in by_step})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_title(f"{design}, {flaw}", fontsize=10, loc="left")
            ax.set_xlabel("training steps")
            ax.set_ylabel("collateral(vanilla) / collateral(method)" if col == 0 else "")
            ax.spines[["top", "right"]].set_visible(False)
            if row == 0 and col == 0:
                ax.legend(fontsize=7, frameon=False)
    fig.suptitle("Segment credit against training length (> 1: less movement on the unflawed segment)",
                 fontsize=11, x=0.01, ha="left")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)

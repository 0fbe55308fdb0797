"""Per-pair measures of the segment-credit experiment and their intervals (pure: numbers in, figures out).

For one held-out pair, a trained policy and the starting policy (which is also the DPO reference, so the change
of the implicit reward margin is the change of the policy's own log-prob margin):

- ``delta_flawed`` / ``delta_unflawed``: change of each segment's margin, ``Σ log p(chosen seg) − Σ log p(rejected
  seg)``, after minus before;
- ``collateral``: ``|Δm_unflawed| / |Δm_flawed|``, per pair (averaging signed changes first would let pairs
  that move a lot in opposite directions read as no movement);
- ``displacement_chosen`` / ``displacement_rejected``: change of the unflawed segment's log-prob *per token* on
  each side: negative on the chosen side means the good text itself became less likely, whatever the margin.

A figure over held-out pairs and seeds is the mean over seeds of a per-seed statistic over pairs (the mean, or
the median for the collateral), with a 95% percentile-bootstrap interval that resamples pairs (the same pairs
for every seed and method, so comparisons are paired), and the spread of the per-seed values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cotforge.experiments.segment_credit import FLAWED_SEGMENT, FlawType

MEASURES = ("delta_flawed", "delta_unflawed", "collateral", "displacement_chosen", "displacement_rejected")
RESAMPLES = 2000
CONFIDENCE = 0.95
Segment = Literal["reasoning", "answer"]


@dataclass(frozen=True)
class SideLogps:
    """One completion's log-prob sum and token count per segment."""

    reasoning: float
    answer: float
    reasoning_tokens: int
    answer_tokens: int

    def total(self, segment: Segment) -> float:
        return self.reasoning if segment == "reasoning" else self.answer

    def per_token(self, segment: Segment) -> float:
        tokens = self.reasoning_tokens if segment == "reasoning" else self.answer_tokens
        return self.total(segment) / tokens


@dataclass(frozen=True)
class PairLogps:
    chosen: SideLogps
    rejected: SideLogps

    def margin(self, segment: Segment) -> float:
        return self.chosen.total(segment) - self.rejected.total(segment)


def pair_measures(flaw: FlawType, before: PairLogps, after: PairLogps) -> dict[str, float]:
    """The five measures of one held-out pair (see the module docstring)."""
    flawed: Segment = FLAWED_SEGMENT[flaw]
    unflawed: Segment = "reasoning" if flawed == "answer" else "answer"
    d_flawed = after.margin(flawed) - before.margin(flawed)
    d_unflawed = after.margin(unflawed) - before.margin(unflawed)
    return {
        "delta_flawed": d_flawed,
        "delta_unflawed": d_unflawed,
        "collateral": abs(d_unflawed) / abs(d_flawed) if d_flawed != 0 else float("inf"),
        "displacement_chosen": after.chosen.per_token(unflawed) - before.chosen.per_token(unflawed),
        "displacement_rejected": after.rejected.per_token(unflawed) - before.rejected.per_token(unflawed),
    }


def measure_table(
    flaw: FlawType, before: Sequence[PairLogps], after_per_seed: Sequence[Sequence[PairLogps]]
) -> dict[str, np.ndarray]:
    """measure → ``(seeds, pairs)`` array."""
    if not after_per_seed or any(len(after) != len(before) for after in after_per_seed) or not before:
        raise ValueError(f"need one non-empty after-list per seed, each as long as before ({len(before)})")
    rows = [
        [pair_measures(flaw, b, a) for b, a in zip(before, after, strict=True)] for after in after_per_seed
    ]
    return {m: np.array([[row[m] for row in seed] for seed in rows]) for m in MEASURES}


def _statistic(name: str) -> Literal["mean", "median"]:
    return "median" if name == "collateral" else "mean"


def _reduce(values: np.ndarray, statistic: Literal["mean", "median"]) -> np.ndarray:
    """Per-seed statistic over the last axis (pairs)."""
    return np.median(values, axis=-1) if statistic == "median" else values.mean(axis=-1)


def _resample_index(n_pairs: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_pairs, size=(resamples, n_pairs))


def _interval(draws: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2
    # "inverted_cdf" picks observed draws, never interpolates between them (a draw may be inf).
    low, high = np.quantile(draws, [tail, 1 - tail], method="inverted_cdf")
    return float(low), float(high)


def _seed_spread(per_seed: np.ndarray) -> dict[str, float]:
    finite = per_seed[np.isfinite(per_seed)]
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "low": float("nan"), "high": float("nan")}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std, "low": float(finite.min()), "high": float(finite.max())}


def summarise(
    values: np.ndarray, statistic: Literal["mean", "median"], resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, object]:
    """``(seeds, pairs)`` → estimate (mean over seeds of the per-seed statistic), 95% bootstrap interval over
    pairs, and the per-seed values with their spread."""
    per_seed = _reduce(values, statistic)
    index = _resample_index(values.shape[1], resamples, seed)
    draws = _reduce(values[:, index], statistic).mean(axis=0)  # (seeds, R, pairs) → (R,)
    low, high = _interval(draws)
    return {"estimate": float(per_seed.mean()), "low": low, "high": high, "per_seed": per_seed.tolist(),
            "seeds": _seed_spread(per_seed)}  # fmt: skip


def collateral_ratio(
    baseline: np.ndarray, method: np.ndarray, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, object]:
    """``median collateral(baseline) / median collateral(method)`` per seed, mean over seeds, with a paired
    bootstrap interval over pairs (> 1: the method put less of its movement on the unflawed segment)."""
    if baseline.shape != method.shape:
        raise ValueError(f"baseline {baseline.shape} and method {method.shape} differ in shape")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_seed = np.median(baseline, axis=-1) / np.median(method, axis=-1)
        index = _resample_index(baseline.shape[1], resamples, seed)
        draws = (np.median(baseline[:, index], axis=-1) / np.median(method[:, index], axis=-1)).mean(axis=0)
    low, high = _interval(draws)
    return {"estimate": float(per_seed.mean()), "low": low, "high": high, "per_seed": per_seed.tolist(),
            "seeds": _seed_spread(per_seed), "excludes_one": bool(low > 1 or high < 1)}  # fmt: skip


def pairs_lower(baseline: np.ndarray, method: np.ndarray) -> int:
    """On how many pairs the method's collateral (median over seeds) is lower than the baseline's."""
    return int((np.median(method, axis=0) < np.median(baseline, axis=0)).sum())


def design_figures(
    before: dict[FlawType, list[PairLogps]],
    after: dict[str, dict[FlawType, dict[int, list[list[PairLogps]]]]],
    resamples: int = RESAMPLES,
) -> dict[str, dict[str, object]]:
    """Figures of one design: ``after[method][flaw][step]`` holds one list of pair log-probs per seed.

    Returns ``{"methods": {method: {flaw: {step: {measure: figure, "lower_than_vanilla": k}}}}, "ratios":
    {method: {flaw: {step: collateral_ratio(vanilla, method)}}}}`` (steps as strings, for JSON).
    """
    methods: dict[str, object] = {}
    ratios: dict[str, object] = {}
    for method, by_flaw in after.items():
        methods[method], ratios[method] = {}, {}
        for flaw, by_step in by_flaw.items():
            rows: dict[str, object] = {}
            ratio_rows: dict[str, object] = {}
            for step, per_seed in sorted(by_step.items()):
                table = measure_table(flaw, before[flaw], per_seed)
                figures: dict[str, object] = {
                    m: summarise(table[m], _statistic(m), resamples) for m in MEASURES
                }
                if "vanilla" in after:
                    baseline = measure_table(flaw, before[flaw], after["vanilla"][flaw][step])["collateral"]
                    figures["lower_than_vanilla"] = pairs_lower(baseline, table["collateral"])
                    ratio_rows[str(step)] = collateral_ratio(baseline, table["collateral"], resamples)
                figures["pairs"] = len(before[flaw])
                rows[str(step)] = figures
            methods[method][flaw] = rows  # type: ignore[index]
            ratios[method][flaw] = ratio_rows  # type: ignore[index]
    return {"methods": methods, "ratios": ratios}

"""Fitting a judge to people (pure core): per score the threshold that best matches the human labels, and κ.

A judge calls a candidate harmful when its score is at or above the threshold; the fitted threshold is the one
of the judge's own score values that maximises Cohen's κ against the reviewers' majority labels (ties: the one
nearest 0.5, the uncalibrated line). The judge's agreement is κ over both labelled segments (reasoning, answer)
at their fitted thresholds. Intervals are percentile-bootstrap 95 %, resampling candidates jointly across the
scores, and the threshold is fitted anew in every resample, so the κ interval carries the cost of having
chosen the threshold on the same labels. A resample is a multinomial count per candidate, so every
threshold's confusion counts for every resample are one matrix product.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cotforge.pairs.calibration_file import SCORE_FIELDS, Interval, JudgeCalibration, ScoreCalibration
from cotforge.pairs.judges import JudgeIdentity

TAILS = (2.5, 97.5)
POOLED = ("h_rs", "h_rp")  # the two scores people label directly; h_f's label is derived from them


def kappa_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """Cohen's κ of 2×2 confusion counts, elementwise; NaN where chance agreement is total (undefined)."""
    n = tp + fp + fn + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (tp + tn) / n
        expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        kappa = (observed - expected) / (1.0 - expected)
    return np.where((n > 0) & (expected < 1.0 - 1e-12), kappa, np.nan)


def _interval(point: float | None, samples: np.ndarray) -> Interval:
    defined = samples[~np.isnan(samples)]
    if point is None or np.isnan(point):
        return Interval(value=None)
    if len(defined) < 10:
        return Interval(value=round(float(point), 4))
    low, high = np.percentile(defined, TAILS)
    return Interval(value=round(float(point), 4), low=round(float(low), 4), high=round(float(high), 4))


class _Field:
    """One score's data over the candidate universe: scores, human labels, which candidates count."""

    def __init__(self, scores: Mapping[str, float], truth: Mapping[str, bool], universe: list[str]) -> None:
        self.present = np.array([c in scores and c in truth for c in universe])
        self.score = np.array([scores.get(c, 0.0) for c in universe], dtype=float)
        self.harmful = np.array([truth.get(c, False) for c in universe]) & self.present
        self.thresholds = np.unique(self.score[self.present])

    def counts(self, weights: np.ndarray) -> tuple[np.ndarray, ...]:
        """(tp, fp, fn, tn), each resamples × thresholds."""
        calls = self.score[None, :] >= self.thresholds[:, None]  # thresholds × candidates
        h, m = self.harmful[None, :], self.present[None, :]
        masks = (calls & h, calls & ~h & m, ~calls & h, ~calls & ~h & m)
        return tuple(weights @ mask.T.astype(float) for mask in masks)

    def best(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Per resample: the fitted threshold's index, its κ, and its confusion counts."""
        counts = self.counts(weights)
        kappa = kappa_from_counts(*counts)
        # Highest κ; among equals the threshold nearest 0.5.
        key = np.where(np.isnan(kappa), -np.inf, kappa) - 1e-9 * np.abs(self.thresholds - 0.5)[None, :]
        index = np.argmax(key, axis=1)
        rows = np.arange(len(index))
        return index, kappa[rows, index], tuple(c[rows, index] for c in counts)


def _not_fitted(field: _Field, min_labels: int) -> str | None:
    n, harmful = int(field.present.sum()), int(field.harmful.sum())
    if n < min_labels:
        return f"{n} labelled candidate(s); at least {min_labels} are needed"
    if harmful in (0, n):
        side = "harmful" if harmful else "harmless"
        return f"all {n} labels are {side}: a threshold needs candidates people call harmful and harmless"
    return None


def fit_judge(
    by_field: Mapping[str, Mapping[str, float]],
    truth: Mapping[str, Mapping[str, bool]],
    identity: JudgeIdentity | None,
    resamples: int = 1000,
    seed: int = 0,
    min_labels: int = 10,
) -> JudgeCalibration:
    """One judge's calibration from its scores (field → candidate → score) and the labels (field → candidate)."""
    universe = sorted({c for f in SCORE_FIELDS for c in by_field.get(f, {}) if c in truth.get(f, {})})
    rng = np.random.default_rng(seed)
    n = len(universe)
    weights = np.vstack(
        [
            np.ones(n),
            rng.multinomial(n, np.full(n, 1.0 / n), size=resamples) if n else np.zeros((resamples, 0)),
        ]
    )
    scores: dict[str, ScoreCalibration] = {}
    pooled: list[tuple[np.ndarray, ...]] = []
    for name in SCORE_FIELDS:
        field = _Field(by_field.get(name, {}), truth.get(name, {}), universe)
        note = _not_fitted(field, min_labels)
        counts_n, harmful = int(field.present.sum()), int(field.harmful.sum())
        if note is not None:
            empty = Interval(value=None)
            scores[name] = ScoreCalibration(
                n=counts_n, harmful=harmful, threshold=empty, kappa=empty, note=note
            )
            continue
        index, kappa, counts = field.best(weights)
        chosen = field.thresholds[index].astype(float)
        chosen[np.isnan(kappa)] = np.nan
        scores[name] = ScoreCalibration(
            n=counts_n,
            harmful=harmful,
            threshold=_interval(float(chosen[0]), chosen[1:]),
            kappa=_interval(float(kappa[0]), kappa[1:]),
        )
        if name in POOLED:
            pooled.append(counts)
    decisions = sum(scores[f].n for f in POOLED)
    if len(pooled) < len(POOLED):
        return JudgeCalibration(identity=identity, scores=scores, agreement=Interval(value=None), n=decisions)
    first, second = pooled
    agreement = kappa_from_counts(*(a + b for a, b in zip(first, second, strict=True)))
    return JudgeCalibration(
        identity=identity, scores=scores, agreement=_interval(float(agreement[0]), agreement[1:]), n=decisions
    )

"""Judge calibration against people: how each judge's scores match human harm labels, and where to draw its line.

Pure core. Human labels come per candidate, per segment (``reasoning``, ``answer``) and per reviewer; a
candidate's label is the reviewers' majority (ties are left out); the whole output (h_f) counts harmful when
either segment is, harmless when both are. Per judge and segment at the fixed threshold the report gives Cohen's
κ, accuracy, mean absolute error of the score against the 0/1 label, confusion counts, and the reviewers' own
agreement. Per judge and score it fits the threshold that best matches people (`calibration_fit.py`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

from cotforge.curation.calibration_fit import fit_judge
from cotforge.pairs.calibration_file import (
    CalibrationReport,
    Confusion,
    Interval,
    JudgeAgreement,
)
from cotforge.pairs.judges import JudgeIdentity
from cotforge.review.agreement import agreement_report, cohen_kappa

SEGMENTS = {"reasoning": "h_rs", "answer": "h_rp"}
HARMFUL, HARMLESS = "harmful", "harmless"
LABELS = (HARMLESS, HARMFUL)

# candidate id → reviewer → label
SegmentLabels = Mapping[str, Mapping[str, str]]


def majority(labels: Mapping[str, str]) -> str | None:
    """The reviewers' majority label, or ``None`` on a tie or no label."""
    counts = Counter(labels.values()).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def _metrics(rows: Sequence[tuple[float, str]], threshold: float) -> tuple[float | None, float, float]:
    pairs = [(HARMFUL if s >= threshold else HARMLESS, h) for s, h in rows]
    kappa = cohen_kappa(pairs)
    accuracy = sum(j == h for j, h in pairs) / len(pairs)
    mae = sum(abs(s - (1.0 if h == HARMFUL else 0.0)) for s, h in rows) / len(rows)
    return kappa, accuracy, mae


def _interval(samples: list[float | None], value: float | None) -> Interval:
    defined = sorted(s for s in samples if s is not None)
    if value is None or len(defined) < 10:
        return Interval(value=value)
    low = defined[int(0.025 * (len(defined) - 1))]
    high = defined[int(0.975 * (len(defined) - 1))]
    return Interval(value=round(value, 4), low=round(low, 4), high=round(high, 4))


def judge_agreement(
    judge: str,
    segment: str,
    scores: Mapping[str, float],
    human: Mapping[str, str],
    threshold: float = 0.5,
    resamples: int = 1000,
    seed: int = 0,
) -> JudgeAgreement | None:
    """One judge's agreement with the human majority labels on the candidates both have (``None``: none)."""
    rows = [(scores[c], label) for c, label in sorted(human.items()) if c in scores]
    if not rows:
        return None
    kappa, accuracy, mae = _metrics(rows, threshold)
    rng = random.Random(seed)
    boot = [_metrics([rows[rng.randrange(len(rows))] for _ in rows], threshold) for _ in range(resamples)]
    confusion = Counter(
        ("t" if (s >= threshold) == (h == HARMFUL) else "f") + ("p" if s >= threshold else "n")
        for s, h in rows
    )
    return JudgeAgreement(
        judge=judge,
        segment=segment,
        n=len(rows),
        kappa=_interval([b[0] for b in boot], kappa),
        accuracy=_interval([b[1] for b in boot], accuracy),
        mae=_interval([b[2] for b in boot], mae),
        confusion=Confusion(**{k: confusion.get(k, 0) for k in ("tp", "fp", "tn", "fn")}),
    )


def score_labels(majorities: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, bool]]:
    """Score field → candidate → harmful, from the segment majorities (h_f: either segment harmful)."""
    out = {
        field: {c: m == HARMFUL for c, m in majorities.get(seg, {}).items()}
        for seg, field in SEGMENTS.items()
    }
    full: dict[str, bool] = {}
    for c in set(out["h_rs"]) | set(out["h_rp"]):
        parts = [out[f][c] for f in ("h_rs", "h_rp") if c in out[f]]
        if any(parts):
            full[c] = True
        elif len(parts) == 2:
            full[c] = False
    out["h_f"] = full
    return out


def calibration_report(
    labels: Mapping[str, SegmentLabels],
    judges: Mapping[str, Mapping[str, Mapping[str, float]]],
    threshold: float = 0.5,
    resamples: int = 1000,
    identities: Mapping[str, JudgeIdentity] | None = None,
    min_labels: int = 10,
) -> CalibrationReport:
    """``labels``: segment → candidate → reviewer → label; ``judges``: judge → score field (h_rs, h_rp, h_f) →
    candidate → score; ``identities``: judge → what it is (recorded so the file is refused for another)."""
    majorities = {
        segment: {c: m for c, votes in by_candidate.items() if (m := majority(votes)) is not None}
        for segment, by_candidate in labels.items()
    }
    results = [
        agreement
        for judge, by_field in judges.items()
        for segment, field in SEGMENTS.items()
        if (agreement := judge_agreement(judge, segment, by_field.get(field, {}),
                                         majorities.get(segment, {}), threshold, resamples)) is not None
    ]  # fmt: skip
    reviewers = {
        segment: agreement_report(segment, by_candidate, "nominal")
        for segment, by_candidate in labels.items()
    }
    truth = score_labels(majorities)
    calibrations = {
        judge: fit_judge(by_field, truth, (identities or {}).get(judge), resamples, min_labels=min_labels)
        for judge, by_field in judges.items()
    }
    return CalibrationReport(
        threshold=threshold,
        labelled={s: len(m) for s, m in majorities.items()},
        judges=results,
        reviewers=reviewers,
        calibrations=calibrations,
    )

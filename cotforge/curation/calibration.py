"""Judge calibration against people: agreement of the LLM judge and the rule judge with human harm labels.

Pure core. Human labels come per candidate, per segment (``reasoning``, ``answer``) and per reviewer; a
candidate's label is the reviewers' majority (ties are left out). Each judge's score is turned into a label
at the threshold; per segment the report gives Cohen's κ, accuracy at the threshold, mean absolute error of
the score against the 0/1 label, confusion counts, percentile-bootstrap 95 % intervals, and the agreement
between reviewers themselves.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from cotforge.review.agreement import QuestionAgreement, agreement_report, cohen_kappa

SEGMENTS = {"reasoning": "h_rs", "answer": "h_rp"}
HARMFUL, HARMLESS = "harmful", "harmless"
LABELS = (HARMLESS, HARMFUL)

# candidate id → reviewer → label
SegmentLabels = Mapping[str, Mapping[str, str]]


class Interval(BaseModel):
    """A point estimate with a percentile-bootstrap 95 % interval (``None`` when undefined)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None
    low: float | None = None
    high: float | None = None


class Confusion(BaseModel):
    """Judge label (rows) against the human label: true/false positive/negative, positive = harmful."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0


class JudgeAgreement(BaseModel):
    """One judge against people on one segment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    segment: str
    n: int
    kappa: Interval
    accuracy: Interval
    mae: Interval
    confusion: Confusion


class CalibrationReport(BaseModel):
    """``calibration.json``: every judge × segment, and the reviewers' own agreement per segment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float
    labelled: dict[str, int] = Field(description="Segment → candidates with a majority human label.")
    judges: list[JudgeAgreement]
    reviewers: dict[str, QuestionAgreement]


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


def calibration_report(
    labels: Mapping[str, SegmentLabels],
    judges: Mapping[str, Mapping[str, Mapping[str, float]]],
    threshold: float = 0.5,
    resamples: int = 1000,
) -> CalibrationReport:
    """``labels``: segment → candidate → reviewer → label; ``judges``: judge → segment → candidate → score."""
    majorities = {
        segment: {c: m for c, votes in by_candidate.items() if (m := majority(votes)) is not None}
        for segment, by_candidate in labels.items()
    }
    results = [
        agreement
        for judge, by_segment in judges.items()
        for segment in SEGMENTS
        if (agreement := judge_agreement(judge, segment, by_segment.get(segment, {}),
                                         majorities.get(segment, {}), threshold, resamples)) is not None
    ]  # fmt: skip
    reviewers = {
        segment: agreement_report(segment, by_candidate, "nominal")
        for segment, by_candidate in labels.items()
    }
    return CalibrationReport(
        threshold=threshold,
        labelled={s: len(m) for s, m in majorities.items()},
        judges=results,
        reviewers=reviewers,
    )

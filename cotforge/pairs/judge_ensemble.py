"""Judge ensembles (pure core): several judges' scores of the same candidates, calibrated and combined.

Each candidate's disagreement is the widest spread between its judges on any of the three scores (h_rs, h_rp,
h_f); a candidate whose judges disagree by more than a set margin, or that some judge did not score, is left
out of the pairs with its reasons, since no single score stands for it. A calibration (see
`calibration_file.py`) first maps every judge onto the scale where people draw the line at 0.5, and weights
each judge's say in the mean or the vote by its agreement with them (Cohen's κ, floored at 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from cotforge.pairs.calibration_file import (
    SCORE_FIELDS,
    CalibrationError,
    CalibrationReport,
    Interval,
    calibrated_score,
)
from cotforge.pairs.judges import JudgeIdentity
from cotforge.schemas import CandidateScores, JudgeScores

Combine = Literal["mean", "majority"]
FIELDS = SCORE_FIELDS
# Judge id → score field → weight of that judge's score.
Weights = Mapping[str, Mapping[str, float]]
JUDGE_MISSING = "judge_missing"


def disagreement_reason(field: str) -> str:
    """The reason code of a candidate left out because its judges disagree on ``field``."""
    return f"judges_disagree_{field}"


def _weighted_mean(values: list[float], weights: list[float]) -> float:
    total = sum(weights)
    if total <= 0:
        return sum(values) / len(values)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total


def _combine(values: list[float], weights: list[float], method: Combine, threshold: float) -> float:
    if method == "mean":
        return _weighted_mean(values, weights)
    # Majority: the side (harmful at `threshold` or not) with more weight; a tie counts harmful (the cautious
    # side); the result is the weighted mean of the judges on that side.
    if sum(weights) <= 0:
        weights = [1.0] * len(values)
    harmful = sum(w for v, w in zip(values, weights, strict=True) if v >= threshold)
    side = 2 * harmful >= sum(weights)
    kept = [(v, w) for v, w in zip(values, weights, strict=True) if (v >= threshold) == side]
    return _weighted_mean([v for v, _ in kept], [w for _, w in kept])


def ensemble_id(judges: list[str], method: Combine) -> str:
    """The judge id of combined scores (a single judge keeps its own)."""
    return judges[0] if len(judges) == 1 else f"ensemble:{method}({','.join(judges)})"


def combine_judges(
    by_judge: Mapping[str, Mapping[str, JudgeScores]],
    method: Combine = "mean",
    threshold: float = 0.5,
    weights: Weights | None = None,
    max_disagreement: float = 1.0,
) -> dict[str, CandidateScores]:
    """Every candidate any judge scored, with its combined scores, spread, and reasons to leave it out.

    ``mean`` averages each score (weighted); ``majority`` takes the side (harmful at ``threshold`` or not) most
    of the judges' weight is on, ties harmful, and averages the judges on that side. A candidate is dropped
    (``dropped`` non-empty) when a judge did not score it or its judges disagree by more than
    ``max_disagreement`` on a score. A single judge's scores pass through unchanged.
    """
    if not by_judge:
        raise ValueError("combine_judges needs at least one judge")
    judges = sorted(by_judge)
    name = ensemble_id(judges, method)
    out: dict[str, CandidateScores] = {}
    for cand in sorted(set().union(*(set(by_judge[j]) for j in judges))):
        per = {j: by_judge[j][cand] for j in judges if cand in by_judge[j]}
        columns = {f: [getattr(s, f) for s in per.values()] for f in FIELDS}
        spread = {f: round(max(v) - min(v), 6) for f, v in columns.items()}
        if len(judges) == 1:
            scores = per[judges[0]]
        else:
            w = [[(weights or {}).get(j, {}).get(f, 1.0) for j in per] for f in FIELDS]
            combined = {f: _combine(columns[f], w[i], method, threshold) for i, f in enumerate(FIELDS)}
            scores = JudgeScores(candidate_id=cand, judge_id=name, **combined)
        dropped = [JUDGE_MISSING] if len(per) < len(judges) else []
        dropped += [disagreement_reason(f) for f in FIELDS if spread[f] > max_disagreement]
        out[cand] = CandidateScores(
            candidate_id=cand,
            scores=scores,
            per_judge=per,
            spread=spread,
            disagreement=max(spread.values()),
            dropped=dropped,
        )
    return out


def labels_to_settle(agreement: Interval, decisions: int, bar: float) -> str:
    """How many labels would settle whether a judge's agreement clears ``bar`` (for an error message).

    The interval's half-width shrinks as 1/√n, so the lower bound clears ``bar`` at about
    ``n · ((κ − low) / (κ − bar))²`` labelled decisions if κ holds; a κ at or under the bar is not lifted by
    more labels.
    """
    value, low = agreement.value, agreement.low
    if value is None or low is None:
        return (
            f"its κ is undefined on {decisions} labelled decisions (all labels or all its scores on one side): "
            "label candidates people call harmful and harmless alike"
        )
    if value <= bar:
        return f"its κ itself ({value:.2f}) is not above {bar}: more labels would not lift it; use another judge or rubric"
    needed = math.ceil(decisions * ((value - low) / (value - bar)) ** 2)
    more = max(needed - decisions, 1)
    return (
        f"about {needed} labelled decisions, i.e. {math.ceil(more / 2)} more candidates labelled on reasoning and "
        f"answer, would put the lower bound above {bar} if κ holds at {value:.2f}"
    )


def apply_calibration(
    by_judge: Mapping[str, Mapping[str, JudgeScores]],
    report: CalibrationReport,
    identities: Mapping[str, JudgeIdentity],
    min_agreement: float,
    file: str,
) -> tuple[dict[str, dict[str, JudgeScores]], dict[str, dict[str, float]]]:
    """Each judge's scores mapped through its calibrated thresholds, and its weight per score (κ, floored at 0).

    Refuses (:class:`CalibrationError`) a judge the file does not calibrate, one whose model or rubric differs
    from the calibrated one (``identities``, when the judge stage recorded them), a score without a fitted
    threshold, and a judge whose agreement's lower bound is under ``min_agreement``.
    """
    calibrated: dict[str, dict[str, JudgeScores]] = {}
    weights: dict[str, dict[str, float]] = {}
    for judge, scores in by_judge.items():
        cal = report.calibrations.get(judge)
        if cal is None:
            raise CalibrationError(
                f"calibration {file} has no entry for judge {judge} (it calibrates: "
                f"{', '.join(sorted(report.calibrations))}); label this judge's scores (`cotforge judge-calibrate "
                "push` then `report`) or build the pairs without --calibration",
                file=file,
            )
        mine = identities.get(judge)
        if mine is not None and cal.identity is not None and (diff := mine.differs_from(cal.identity)):
            raise CalibrationError(
                f"calibration {file} was made for another judge {judge} ({diff}): people labelled other "
                "scores than this run's; calibrate this run's judge, or build the pairs without --calibration",
                file=file,
            )
        thresholds: dict[str, float] = {}
        for field in FIELDS:
            fitted = cal.scores.get(field)
            if fitted is None or fitted.threshold.value is None:
                why = fitted.note if fitted is not None and fitted.note else "not in the file"
                raise CalibrationError(
                    f"calibration {file}: judge {judge} has no fitted threshold for {field} ({why}); have "
                    "reviewers label more candidates and run `cotforge judge-calibrate report` again",
                    file=file,
                )
            thresholds[field] = fitted.threshold.value
        low = cal.agreement.low
        if low is None or low < min_agreement:
            a = cal.agreement
            shown = "undefined" if a.value is None else f"{a.value:.2f}"
            if a.low is not None and a.high is not None:
                shown += f" [{a.low:.2f}, {a.high:.2f}]"
            raise CalibrationError(
                f"calibration {file}: judge {judge} agrees with people at κ = {shown} on {cal.n} labelled "
                f"decisions, under min_agreement {min_agreement} at the interval's lower bound; "
                f"{labels_to_settle(cal.agreement, cal.n, min_agreement)}. Or lower min_agreement, or leave the "
                "judge out",
                file=file,
            )
        calibrated[judge] = {
            c: s.model_copy(
                update={f: round(calibrated_score(getattr(s, f), thresholds[f]), 6) for f in FIELDS}
            )
            for c, s in scores.items()
        }
        weights[judge] = {f: max(cal.scores[f].kappa.value or 0.0, 0.0) for f in FIELDS}
    return calibrated, weights

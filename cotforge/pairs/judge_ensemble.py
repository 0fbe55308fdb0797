"""Judge ensembles (pure core): several judges' scores of the same candidates combined by mean or majority.

Each candidate's disagreement is the widest spread between its judges on any of the three scores (h_rs, h_rp,
h_f); a candidate whose judges disagree by more than a set margin can be left out of the pairs, since no single
score stands for it. Not yet wired into the `judge` and `pairs` stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import fmean
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.errors import ConfigError
from cotforge.schemas import JudgeScores

Combine = Literal["mean", "majority"]
FIELDS = ("h_rs", "h_rp", "h_f")


class EnsembleScore(BaseModel):
    """A candidate's combined scores, every judge's own, and how far the judges disagree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scores: JudgeScores
    per_judge: dict[str, JudgeScores]
    disagreement: float = Field(ge=0.0, le=1.0, description="Largest max − min over judges of any score.")


def _combine(values: list[float], method: Combine, threshold: float) -> float:
    if method == "mean":
        return fmean(values)
    # Majority: the share of judges calling it harmful; a tie counts harmful (the cautious side).
    harmful = sum(v >= threshold for v in values)
    return fmean(v for v in values if (v >= threshold) == (2 * harmful >= len(values)))


def combine_judges(
    by_judge: Mapping[str, Mapping[str, JudgeScores]], method: Combine = "mean", threshold: float = 0.5
) -> dict[str, EnsembleScore]:
    """Combine ``{judge id: {candidate id: scores}}`` over the candidates every judge scored.

    ``mean`` averages each score; ``majority`` takes the side (harmful at ``threshold`` or not) most judges
    are on, ties harmful, and averages the judges on that side.
    """
    if len(by_judge) < 2:
        raise ConfigError(f"a judge ensemble needs at least two judges; got {sorted(by_judge) or 'none'}")
    judges = sorted(by_judge)
    shared = set.intersection(*(set(by_judge[j]) for j in judges))
    name = f"ensemble:{method}({','.join(judges)})"
    out: dict[str, EnsembleScore] = {}
    for cand in sorted(shared):
        per = {j: by_judge[j][cand] for j in judges}
        columns = {f: [getattr(s, f) for s in per.values()] for f in FIELDS}
        combined = {f: _combine(v, method, threshold) for f, v in columns.items()}
        spread = max(max(v) - min(v) for v in columns.values())
        out[cand] = EnsembleScore(
            scores=JudgeScores(candidate_id=cand, judge_id=name, **combined),
            per_judge=per,
            disagreement=round(spread, 6),
        )
    return out


def split_by_disagreement(
    scores: Mapping[str, EnsembleScore], margin: float
) -> tuple[dict[str, EnsembleScore], dict[str, EnsembleScore]]:
    """(kept, dropped): a candidate is dropped when its judges disagree by more than ``margin``."""
    kept = {c: s for c, s in scores.items() if s.disagreement <= margin}
    return kept, {c: s for c, s in scores.items() if c not in kept}

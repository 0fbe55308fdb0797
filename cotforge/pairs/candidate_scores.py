"""The scores `pairs` builds from: every judge's line of ``judgments.jsonl``, calibrated and combined.

A run with one judge (every run before ensembles) uses its scores as they are. With several, each candidate's
scores are combined (`judge_ensemble.py`) and candidates the judges disagree on, or that a judge missed, are
left out with their reasons (``pairs.rejects.jsonl``, counted in the manifest). ``pairs.scores.jsonl`` records
what every candidate's pairs were built from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotforge.pairs.calibration_file import read_calibration
from cotforge.pairs.judge_ensemble import Combine, apply_calibration, combine_judges
from cotforge.pairs.judges import recorded_identities
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import CandidateScores, JudgeScores, RejectRecord

DISAGREEMENT_BINS = 10


@dataclass
class ScoredCandidates:
    """The combined scores of the candidates pairs may use, every candidate's record, and what was left out."""

    scores: dict[str, JudgeScores] = field(default_factory=dict)
    records: list[CandidateScores] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    calibration: str | None = None  # the calibration file's SHA-256 (16 hex digits) when one was applied


def _histogram(values: list[float]) -> list[int]:
    counts = [0] * DISAGREEMENT_BINS
    for v in values:
        counts[min(int(v * DISAGREEMENT_BINS), DISAGREEMENT_BINS - 1)] += 1
    return counts


def scored_candidates(
    folder: RunFolder,
    judgments: list[JudgeScores],
    *,
    combine: Combine,
    threshold: float,
    max_disagreement: float,
    calibration: str | None,
    min_agreement: float,
) -> ScoredCandidates:
    """Group ``judgments`` by judge, calibrate (when a file is given), combine, and sort out who is left out."""
    by_judge: dict[str, dict[str, JudgeScores]] = {}
    for s in judgments:
        by_judge.setdefault(s.judge_id, {})[s.candidate_id] = s
    out = ScoredCandidates()
    if not by_judge:
        return out
    weights = None
    if calibration is not None:
        report, digest = read_calibration(calibration)
        by_judge, weights = apply_calibration(
            by_judge, report, recorded_identities(folder), min_agreement, calibration
        )
        out.calibration = digest
        out.report["calibration"] = {
            "file": str(Path(calibration)),
            "sha256": digest,
            "labelled_run": report.run,
            "dataset": report.dataset,
            "min_agreement": min_agreement,
            "judges": {
                j: {
                    "thresholds": {f: report.calibrations[j].scores[f].threshold.value for f in weights[j]},
                    "weights": weights[j],
                    "agreement": report.calibrations[j].agreement.model_dump(),
                }
                for j in by_judge
            },
        }
    combined = combine_judges(by_judge, combine, threshold, weights, max_disagreement)
    out.records = list(combined.values())
    out.scores = {c: s.scores for c, s in combined.items() if not s.dropped}
    dropped = [s for s in combined.values() if s.dropped]
    out.rejects = [
        RejectRecord(
            stage="pairs",
            source=RunFiles.JUDGMENTS,
            record_id=s.candidate_id,
            reasons=list(s.dropped),
            message=f"candidate {s.candidate_id} left out: "
            + ", ".join(s.dropped)
            + f" (spread {', '.join(f'{k} {v:.2f}' for k, v in s.spread.items())}; max_disagreement "
            f"{max_disagreement}; judges {', '.join(s.per_judge)})",
            raw={"per_judge": {j: v.model_dump() for j, v in s.per_judge.items()}},
        )
        for s in dropped
    ]
    if len(by_judge) > 1 or calibration is not None:
        disagreements = [s.disagreement for s in combined.values()]
        out.report["ensemble"] = {
            "judges": sorted(by_judge),
            "combine": combine,
            "max_disagreement": max_disagreement,
            "candidates": len(combined),
            "kept": len(out.scores),
            "dropped": dict(Counter(r for s in dropped for r in s.dropped)),
            "dropped_candidates": len(dropped),
            "disagreement_mean": round(sum(disagreements) / len(disagreements), 4),
            "disagreement_histogram": _histogram(disagreements),
        }
    return out

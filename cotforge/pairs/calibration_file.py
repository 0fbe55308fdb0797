"""The judge calibration file (``calibration.json``): what `judge-calibrate report` writes and `pairs` reads.

Per judge it holds the judge's identity (model and rubric hash, or the rule judge's version), and per score
(h_rs, h_rp, h_f) the threshold that best matches the human labels and Cohen's κ there, each with a
percentile-bootstrap 95 % interval; plus the judge's agreement over both labelled segments. The per-segment
metrics at the fixed threshold and the reviewers' own agreement are kept beside them for the report.

A calibrated threshold ``t`` is applied by mapping a judge's score ``s`` piecewise-linearly onto the common
scale, ``s ↦ s / (2t)`` below ``t`` and ``½ + (s − t) / (2(1 − t))`` from ``t`` on: monotone, 0 and 1 stay put,
and ``t`` lands on 0.5, so judges whose scales differ meet at the same threshold. [interpretation: the method
names no calibration; this keeps each judge's ranking and makes 0.5 mean "where people draw the line".]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cotforge.errors import CotforgeError
from cotforge.pairs.judges import JudgeIdentity
from cotforge.review.agreement import QuestionAgreement

CALIBRATION_FILE = "calibration.json"
SCORE_FIELDS = ("h_rs", "h_rp", "h_f")


class CalibrationError(CotforgeError):
    """Calibration cannot run or be applied: too few labels, a file from another judge, a judge below the bar."""


class Interval(BaseModel):
    """A point estimate with a percentile-bootstrap 95 % interval (``None`` when undefined)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

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
    """One judge against people on one segment, at the fixed threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    segment: str
    n: int
    kappa: Interval
    accuracy: Interval
    mae: Interval
    confusion: Confusion


class ScoreCalibration(BaseModel):
    """One score of one judge: the threshold that best matches people, and κ there (``None``: not fitted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(ge=0, description="Candidates with a human label for this score.")
    harmful: int = Field(ge=0, description="Of those, labelled harmful by the reviewers' majority.")
    threshold: Interval
    kappa: Interval
    note: str | None = Field(default=None, description="Why no threshold could be fitted.")

    @model_validator(mode="after")
    def _in_range(self) -> ScoreCalibration:
        for name, interval, low, high in (
            ("threshold", self.threshold, 0.0, 1.0),
            ("kappa", self.kappa, -1.0, 1.0),
        ):
            for value in (interval.value, interval.low, interval.high):
                if value is not None and not low <= value <= high:
                    raise ValueError(f"{name} {value} is outside [{low}, {high}]")
        return self


class JudgeCalibration(BaseModel):
    """One judge's calibration: its identity, each score's threshold, and its agreement with people."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    identity: JudgeIdentity | None = None
    scores: dict[str, ScoreCalibration]
    agreement: Interval = Field(description="Cohen's κ over both labelled segments at the fitted thresholds.")
    n: int = Field(ge=0, description="Labelled decisions behind the agreement (reasoning + answer).")

    @model_validator(mode="after")
    def _kappa_in_range(self) -> JudgeCalibration:
        for value in (self.agreement.value, self.agreement.low, self.agreement.high):
            if value is not None and not -1.0 <= value <= 1.0:
                raise ValueError(f"agreement {value} is outside [-1, 1]")
        return self


class CalibrationReport(BaseModel):
    """``calibration.json``: every judge × segment at the fixed threshold, the reviewers' own agreement, and
    (``calibrations``) each judge's fitted thresholds and agreement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float
    labelled: dict[str, int] = Field(description="Segment → candidates with a majority human label.")
    judges: list[JudgeAgreement]
    reviewers: dict[str, QuestionAgreement]
    calibrations: dict[str, JudgeCalibration] = Field(
        default_factory=dict, description="Judge id → calibration."
    )
    run: str | None = Field(default=None, description="The run folder whose judgments were labelled.")
    dataset: str | None = Field(default=None, description="The Argilla dataset the labels came from.")


def read_calibration(path: str | Path) -> tuple[CalibrationReport, str]:
    """The calibration file and its SHA-256 (16 hex digits); a :class:`CalibrationError` names what is wrong."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CalibrationError(
            f"calibration file {file}: {exc.strerror}; write one with `cotforge judge-calibrate report RUN`",
            file=file,
        ) from None
    try:
        report = CalibrationReport.model_validate(json.loads(data))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CalibrationError(f"calibration file {file}: not JSON ({exc})", file=file) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the top level"
        raise CalibrationError(
            f"calibration file {file}: {where}: {first['msg']}; it is not a `judge-calibrate report` output",
            file=file,
        ) from None
    if not report.calibrations:
        raise CalibrationError(
            f"calibration file {file} has no fitted thresholds (written by an older cotforge); run "
            "`cotforge judge-calibrate report RUN` again to fit them",
            file=file,
        )
    return report, hashlib.sha256(data).hexdigest()[:16]


def calibrated_score(value: float, threshold: float) -> float:
    """``value`` on the common scale where the judge's calibrated ``threshold`` becomes 0.5 (see module)."""
    if threshold <= 0.0:
        return 0.5 + 0.5 * value
    if threshold >= 1.0:
        return 0.5 if value >= 1.0 else 0.5 * value
    if value < threshold:
        return value / (2 * threshold)
    return 0.5 + (value - threshold) / (2 * (1 - threshold))

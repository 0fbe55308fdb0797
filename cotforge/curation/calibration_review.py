"""`judge-calibrate push|report` edge: a harm-labelling dataset in Argilla, and the report from its labels.

Push samples judged candidates (seeded), one Argilla record each (id = candidate id) with the prompt, the
reasoning and the answer as fields, two label questions (is the reasoning harmful, is the answer harmful) and
the LLM judge's scores as suggestions reviewers can accept or change. Report pulls the submitted labels
through the SDK, scores the judge and the rule judge against them, writes ``calibration.json``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.curation.calibration import (
    HARMFUL,
    HARMLESS,
    LABELS,
    SEGMENTS,
    calibration_report,
)
from cotforge.pairs.calibration_file import CALIBRATION_FILE, CalibrationError, CalibrationReport
from cotforge.pairs.judges import JudgeIdentity, recorded_identities
from cotforge.pairs.rule_judge import RULE_JUDGE_ID
from cotforge.review.connection import ArgillaTarget, argilla_errors, connect, find_dataset, find_workspace
from cotforge.runfolder import RunFiles, RunFolder, atomic_write_text
from cotforge.schemas import Candidate, JudgeScores, PromptRecord

REPORT_FILE = CALIBRATION_FILE
QUESTIONS = {segment: f"{segment}_harm" for segment in SEGMENTS}
SEGMENT_OF = {question: segment for segment, question in QUESTIONS.items()}
MIN_LABELLED = 10


__all__ = ["REPORT_FILE", "CalibrationConfig", "CalibrationError", "push_calibration", "report_calibration"]


class CalibrationConfig(BaseModel):
    """Which Argilla dataset, how many candidates to label, and the harm threshold."""

    model_config = ConfigDict(extra="forbid")

    target: ArgillaTarget = Field(default_factory=ArgillaTarget)
    size: int = Field(default=100, ge=1, description="Judged candidates to sample for labelling.")
    seed: int = 0
    annotators: int = Field(default=2, ge=1, description="Reviewers per record.")
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0, description="Score at or above which = harmful.")
    min_labelled: int = Field(default=MIN_LABELLED, ge=1, description="Labelled candidates needed to report.")

    def dataset_name(self, run: Path) -> str:
        return self.target.dataset or f"cotforge-{run.resolve().name}-calibration"


def _judged(
    folder: RunFolder,
) -> tuple[list[Candidate], dict[str, dict[str, JudgeScores]], dict[str, PromptRecord]]:
    """Split judged candidates, every judge's scores (judge → candidate → scores, in file order), prompts."""
    for name, stage in ((RunFiles.CANDIDATES, "sample"), (RunFiles.JUDGMENTS, "judge")):
        if not folder.exists(name):
            raise CalibrationError(
                f"{folder.path(name)}: not found; run `cotforge {stage} --run {folder.root}` first"
            )
    by_judge: dict[str, dict[str, JudgeScores]] = {}
    for j in folder.read(RunFiles.JUDGMENTS, JudgeScores):
        by_judge.setdefault(j.judge_id, {})[j.candidate_id] = j
    # The judge whose guesses pre-fill the labelling form: the first in the file (the first configured).
    scores = next(iter(by_judge.values()), {})
    candidates = [
        c for c in folder.read(RunFiles.CANDIDATES, Candidate) if c.status == "ok" and c.id in scores
    ]
    if not candidates:
        raise CalibrationError(f"{folder.root}: no judged candidate with a reasoning and an answer to label")
    prompts = {p.id: p for name in (RunFiles.PROMPTS, RunFiles.AUGMENTED) if folder.exists(name)
               for p in folder.read(name, PromptRecord)}  # fmt: skip
    return candidates, by_judge, prompts


def calibration_settings(annotators: int) -> Any:
    """Argilla settings: prompt, reasoning and answer fields; one harmful/harmless question per segment."""
    import argilla as rg

    return rg.Settings(
        guidelines="Label whether the reasoning and the answer are harmful. The judge's guess is pre-filled.",
        fields=[rg.TextField(name="prompt"), rg.TextField(name="reasoning"), rg.TextField(name="answer")],
        questions=[
            rg.LabelQuestion(name=QUESTIONS[s], title=f"Is the {s} harmful?", labels=list(LABELS))
            for s in SEGMENTS
        ],
        metadata=[rg.TermsMetadataProperty(name="judge_id"), rg.TermsMetadataProperty(name="category")],
        distribution=rg.TaskDistribution(min_submitted=annotators),
    )


def push_calibration(run_dir: str | Path, config: CalibrationConfig) -> tuple[str, int]:
    """Create (or extend) the calibration dataset with a seeded sample of judged candidates.

    Returns the dataset name and how many records were added (candidates already there are skipped).
    """
    import argilla as rg

    from cotforge.runfolder.manifest import StageRun

    run = Path(run_dir)
    folder = RunFolder(run)
    candidates, by_judge, prompts = _judged(folder)
    scores = next(iter(by_judge.values()))
    chosen = random.Random(config.seed).sample(candidates, min(config.size, len(candidates)))
    name = config.dataset_name(run)
    url = config.target.resolved_url()
    with StageRun(
        folder, "judge-calibrate-push", config, inputs=[RunFiles.CANDIDATES, RunFiles.JUDGMENTS]
    ) as stage:
        client = connect(config.target)
        with argilla_errors(url, f"creating the calibration dataset {config.target.workspace}/{name}"):
            find_workspace(client, config.target.workspace, create=True)
            dataset = find_dataset(client, name, config.target.workspace)
            if dataset is None:
                dataset = rg.Dataset(name=name, workspace=config.target.workspace,
                                     settings=calibration_settings(config.annotators), client=client).create()  # fmt: skip
            present = {str(r.id) for r in dataset.records(with_suggestions=False, with_responses=False)}
            records = []
            for c in chosen:
                if c.id in present or c.id not in scores:
                    continue
                s = scores[c.id]
                prompt = prompts.get(c.prompt_id)
                suggestions = [
                    rg.Suggestion(QUESTIONS[seg], HARMFUL if getattr(s, attr) >= config.threshold else HARMLESS,
                                  score=float(getattr(s, attr)), agent=s.judge_id)
                    for seg, attr in SEGMENTS.items()
                ]  # fmt: skip
                records.append(
                    rg.Record(
                        id=c.id,
                        fields={"prompt": prompt.text if prompt else c.prompt_id, "reasoning": c.reasoning or "",
                                "answer": c.answer or ""},
                        metadata={"judge_id": s.judge_id, "category": str(prompt.category) if prompt else "unknown"},
                        suggestions=suggestions,
                    )
                )  # fmt: skip
            if records:
                dataset.records.log(records)
        stage.counts.update(sampled=len(chosen), added=len(records))
        stage.extra["dataset"] = f"{config.target.workspace}/{name}"
    return name, len(records)


def pull_labels(run_dir: str | Path, config: CalibrationConfig) -> dict[str, dict[str, dict[str, str]]]:
    """Submitted human labels: segment → candidate id → reviewer → label."""
    run = Path(run_dir)
    name = config.dataset_name(run)
    url = config.target.resolved_url()
    client = connect(config.target)
    with argilla_errors(url, f"reading {config.target.workspace}/{name}"):
        dataset = find_dataset(client, name, config.target.workspace)
        if dataset is None:
            raise CalibrationError(
                f"no calibration dataset {config.target.workspace}/{name} on {url}; run "
                f"`cotforge judge-calibrate push {run}` first, then have reviewers label it"
            )
        users = {str(u.id): u.username for u in client.users}
        labels: dict[str, dict[str, dict[str, str]]] = {s: {} for s in SEGMENTS}
        for record in dataset.records(with_responses=True, with_suggestions=False):
            for response in record.responses:
                segment = SEGMENT_OF.get(response.question_name)
                if (
                    segment is not None
                    and str(getattr(response.status, "value", response.status)) == "submitted"
                ):
                    who = users.get(str(response.user_id), str(response.user_id))
                    labels[segment].setdefault(str(record.id), {})[who] = str(response.value)
    return labels


def _identities(folder: RunFolder) -> dict[str, JudgeIdentity]:
    return {RULE_JUDGE_ID: JudgeIdentity(kind="rules", model=RULE_JUDGE_ID), **recorded_identities(folder)}


def report_calibration(run_dir: str | Path, config: CalibrationConfig) -> CalibrationReport:
    """Pull the labels, fit every judge of the run (and the rule judge) to them, write ``calibration.json``."""
    from cotforge.pairs.rule_judge import rule_judge
    from cotforge.runfolder.manifest import StageRun

    run = Path(run_dir)
    folder = RunFolder(run)
    candidates, by_judge, prompts = _judged(folder)
    labels = pull_labels(run, config)
    labelled = len({c for by_c in labels.values() for c in by_c})
    if labelled < config.min_labelled:
        raise CalibrationError(
            f"{labelled} candidate(s) of {config.target.workspace}/{config.dataset_name(run)} have human labels; "
            f"at least {config.min_labelled} are needed. Have reviewers label them in Argilla "
            f"({config.target.resolved_url()}), or lower --min-labelled"
        )
    fields = ("h_rs", "h_rp", "h_f")
    judges: dict[str, dict[str, dict[str, float]]] = {
        judge: {f: {c: float(getattr(s, f)) for c, s in scores.items()} for f in fields}
        for judge, scores in by_judge.items()
    }
    if RULE_JUDGE_ID not in judges:  # the rule judge is always measured: it costs nothing
        rules = {c.id: r for c in candidates if (p := prompts.get(c.prompt_id)) and (r := rule_judge(p, c))}
        judges[RULE_JUDGE_ID] = {f: {c: float(getattr(s, f)) for c, s in rules.items()} for f in fields}
    with StageRun(folder, "judge-calibrate", config, outputs=[REPORT_FILE]) as stage:
        report = calibration_report(
            labels, judges, config.threshold, identities=_identities(folder), min_labels=config.min_labelled
        )
        report = report.model_copy(update={"run": str(run.resolve()), "dataset": config.dataset_name(run)})
        atomic_write_text(run / REPORT_FILE, report.model_dump_json(indent=2) + "\n")
        stage.counts.update(labelled=labelled, **{f"labelled_{s}": n for s, n in report.labelled.items()})
        stage.extra["fitted"] = {
            j: {f: c.scores[f].threshold.value for f in fields} for j, c in report.calibrations.items()
        }
    return report

"""The `pairs` stage edge: read judged candidates and reviewed samples, build pairs from every source.

Outputs: ``pairs.jsonl`` (`PreferencePair`), ``pairs.trl.jsonl`` (TRL conversational rows + the weight and
span columns the AW-DPO trainer reads), ``pairs.rejects.jsonl`` (records that could not be paired, with
reasons), and ``manifests/pairs.json`` with the statistics.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.pairs.calibration_file import CALIBRATION_FILE
from cotforge.pairs.candidate_scores import scored_candidates
from cotforge.pairs.corrections import correction_pairs
from cotforge.pairs.corruption import CORRUPTIONS, Corruption, corruption_pairs
from cotforge.pairs.judge_ensemble import Combine
from cotforge.pairs.selection import flag_gated_rejections, select_judge_pairs
from cotforge.pairs.stats import mismatch_shares, pair_statistics
from cotforge.pairs.teacher_policy import teacher_policy_pairs
from cotforge.runfolder import RunFiles, RunFolder, gc_paused
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.manifest import StageRun
from cotforge.runfolder.prompts import read_run_prompts
from cotforge.schemas import (
    Candidate,
    JudgeScores,
    PairSource,
    PreferencePair,
    PromptRecord,
    RejectRecord,
    Sample,
    Verdict,
)
from cotforge.templates import default_templates

ALL_SOURCES: list[PairSource] = ["judge", "teacher_vs_policy", "review_correction", "synthetic_corruption"]


class PairsConfig(BaseModel):
    """How pairs are built. γ and α default to the paper's values (0.5, 0.2)."""

    model_config = ConfigDict(extra="forbid")

    sources: list[PairSource] = Field(default_factory=lambda: list(ALL_SOURCES))
    gamma: float = Field(default=0.5, ge=0.0, le=1.0, description="Keep judge pairs whose h_f gap exceeds γ.")
    alpha: float = Field(
        default=0.2, ge=0.0, description="Smoothing of the segment weights (see weights.py)."
    )
    harm_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="h_f at which a candidate is unsafe."
    )
    use_parent_rationale: bool = True
    corruptions: list[Corruption] = Field(default_factory=lambda: list(CORRUPTIONS))
    max_corrupted_samples: int | None = Field(default=None, ge=0, description="Cap on samples corrupted.")
    combine: Combine = Field(
        default="mean",
        description="How several judges' scores are combined: mean, or majority at the threshold.",
    )
    max_disagreement: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Leave out candidates whose judges' scores differ by more than this on any score.",
    )
    calibration: str | None = Field(
        default=None,
        description="A `judge-calibrate report` file: apply its thresholds, weight judges by their agreement.",
    )
    min_agreement: float = Field(
        default=0.0,
        ge=-1.0,
        le=1.0,
        description="With a calibration: refuse a judge whose κ with people has a 95% lower bound under this.",
    )


def _source_inputs(config: PairsConfig) -> list[str]:
    """The files the selected pair sources cannot do without."""
    sources = set(config.sources)
    needed = []
    if sources & {"judge", "teacher_vs_policy"}:
        needed += [RunFiles.CANDIDATES, RunFiles.JUDGMENTS]
    if sources & {"teacher_vs_policy", "review_correction", "synthetic_corruption"}:
        needed.append(RunFiles.ACCEPTED)
    if "review_correction" in sources:
        needed += [RunFiles.REVIEWED, RunFiles.REVIEW_VERDICTS]
    return needed


PAIRS = StageDeclaration(
    name="pairs",
    config="cotforge.pairs.build:PairsConfig",
    edge="cotforge.pairs.build:build_pairs_in_run",
    inputs=(RunFiles.PROMPTS,),
    conditional_inputs=_source_inputs,
    optional_inputs=(
        RunFiles.AUGMENTED,
        RunFiles.CANDIDATES,
        RunFiles.JUDGMENTS,
        RunFiles.ACCEPTED,
        RunFiles.REVIEWED,
        RunFiles.REVIEW_VERDICTS,
        CALIBRATION_FILE,
    ),
    outputs=(RunFiles.PAIRS, RunFiles.PAIRS_TRL, RunFiles.PAIRS_REJECTS, RunFiles.PAIRS_SCORES),
    templates=("corruptions",),
    # A calibration file outside the run folder is not among the hashed inputs: read it on every run.
    volatile=lambda config: config.calibration is not None,
)


class PairsResult(BaseModel):
    pairs: int
    by_source: dict[str, int]
    rejects: int
    left_out: dict[str, int] = Field(default_factory=dict, description="Candidates left out, by reason.")


def _read_optional(folder: RunFolder, name: str, model: type[Any]) -> list[Any]:
    return folder.read(name, model) if folder.exists(name) else []


def _prompts(folder: RunFolder) -> dict[str, PromptRecord]:
    return {p.id: p for p in read_run_prompts(folder, required=False)}


def _with_calibration(pair: PreferencePair, digest: str) -> PreferencePair:
    """A pair whose judge scores went through a calibration names it (by the file's hash) in its lineage."""
    if pair.chosen_scores is None and pair.rejected_scores is None:
        return pair
    return pair.model_copy(update={"lineage": {**pair.lineage, "calibration": digest}})


def build_pairs_in_run(run_dir: str | Path, config: PairsConfig) -> PairsResult:
    """Build pairs from whatever sources the run folder has inputs for; the manifest says which ran."""
    folder = PAIRS.open_run(run_dir, config)
    with StageRun.declared(folder, PAIRS, config) as run:
        with run.timer("read"):
            prompts = _prompts(folder)
            candidates: list[Candidate] = _read_optional(folder, RunFiles.CANDIDATES, Candidate)
            judgments: list[JudgeScores] = _read_optional(folder, RunFiles.JUDGMENTS, JudgeScores)
            accepted: list[Sample] = _read_optional(folder, RunFiles.ACCEPTED, Sample)
            reviewed: list[Sample] = _read_optional(folder, RunFiles.REVIEWED, Sample)
            verdicts: list[Verdict] = _read_optional(folder, RunFiles.REVIEW_VERDICTS, Verdict)
        with run.timer("scores"):
            scored = scored_candidates(
                folder,
                judgments,
                combine=config.combine,
                threshold=config.harm_threshold,
                max_disagreement=config.max_disagreement,
                calibration=config.calibration,
                min_agreement=config.min_agreement,
            )
        scores = scored.scores
        teacher = reviewed or accepted
        built: list[PreferencePair] = []
        rejects: list[RejectRecord] = list(scored.rejects)
        ran: dict[str, str] = {}
        with run.timer("build"), gc_paused():
            if "judge" in config.sources:
                pairs, report = select_judge_pairs(prompts, candidates, scores, config.gamma, config.alpha)
                built += pairs
                run.extra["judge_selection"] = {"kept": report.kept, **report.skipped}
                ran["judge"] = f"{len(candidates)} candidates, {len(scores)} judged"
            if "teacher_vs_policy" in config.sources:
                built += teacher_policy_pairs(
                    teacher,
                    candidates,
                    scores,
                    prompts,
                    config.alpha,
                    config.harm_threshold,
                    config.use_parent_rationale,
                )
                ran["teacher_vs_policy"] = f"{len(teacher)} teacher samples"
            if "review_correction" in config.sources:
                originals = {s.id: s for s in accepted}
                pairs_c, unpaired = correction_pairs(originals, reviewed, verdicts, prompts, config.alpha)
                built += pairs_c
                rejects += [
                    RejectRecord(
                        stage="pairs",
                        source=RunFiles.REVIEW_VERDICTS,
                        reasons=[reason],
                        message=f"{count} review verdict(s) could not be paired: {reason}",
                        raw={"count": count},
                    )
                    for reason, count in unpaired.items()
                ]
                ran["review_correction"] = f"{len(verdicts)} review verdicts"
            if "synthetic_corruption" in config.sources:
                pool = [
                    s for s in teacher if s.prompt_id in prompts and prompts[s.prompt_id].kind == "safety"
                ]
                pool = (
                    pool[: config.max_corrupted_samples] if config.max_corrupted_samples is not None else pool
                )
                built += corruption_pairs(
                    pool, prompts, default_templates().render, config.alpha, config.corruptions
                )
                ran["synthetic_corruption"] = f"{len(pool)} safety samples x {len(config.corruptions)}"
        # The same two completions can meet through two sources; keep the first (sources run in order).
        unique = list({p.id: p for p in reversed(built)}.values())[::-1]
        unique, flagged = flag_gated_rejections(unique, candidates)
        if scored.calibration is not None:
            unique = [_with_calibration(p, scored.calibration) for p in unique]
        unsplit = [c for c in candidates if c.status != "ok"]
        rejects += [
            RejectRecord(
                stage="pairs",
                source=RunFiles.CANDIDATES,
                line=line,
                record_id=c.id,
                reasons=["unknown_prompt"],
                message=f"candidate {c.id}: prompt {c.prompt_id} is in neither {RunFiles.PROMPTS} nor "
                f"{RunFiles.AUGMENTED}; re-run `cotforge sample` on this run",
            )
            for line, c in enumerate(candidates, start=1)
            if c.prompt_id not in prompts
        ]
        with run.timer("write"):
            folder.write(RunFiles.PAIRS, unique)
            folder.write(RunFiles.PAIRS_TRL, (p.to_trl_row() for p in unique))
            folder.write(RunFiles.PAIRS_REJECTS, rejects)
            folder.write(RunFiles.PAIRS_SCORES, scored.records)
        stats = pair_statistics(unique)
        run.counts.update(
            pairs=len(unique),
            duplicates_dropped=len(built) - len(unique),
            candidates=len(candidates),
            candidates_unsplit=len(unsplit),
            rejects=len(rejects),
            candidates_failing_gates=sum(bool(c.gate_reasons) for c in candidates),
            pairs_rejected_side_gated=flagged,
            candidates_left_out_by_judges=len(scored.rejects),
        )
        run.extra.update(
            sources_run=ran,
            statistics=stats,
            candidate_status={
                s: sum(c.status == s for c in candidates) for s in {c.status for c in candidates}
            },
            segment_mismatch=mismatch_shares(candidates, scores, config.harm_threshold),
            candidate_gates=dict(Counter(r for c in candidates for r in c.gate_reasons)),
            **scored.report,
        )
    left_out = dict(Counter(r for rej in scored.rejects for r in rej.reasons))
    return PairsResult(
        pairs=len(unique), by_source=stats["by_source"], rejects=len(rejects), left_out=left_out
    )  # type: ignore[arg-type]

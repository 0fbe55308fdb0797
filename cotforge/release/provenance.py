"""Provenance of a run: teacher, judge, templates, review statistics, counts and config hashes. Pure.

Read from the records themselves (every sample names its teacher, template hash and sampling parameters;
every judgment its judge) and from the stage manifests (status and config hash per stage, the review
agreement report). Missing stages leave their part empty. Nothing here copies a config value, only hashes
and figures, so a release carries no endpoint, path or secret of the machine that built it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.release.run_contents import RunContents
from cotforge.runfolder import RunFiles
from cotforge.runfolder.manifest import scrub_secrets

# How a review manifest written before the stage had one name says its mode.
_LEGACY_REVIEW_MODES = {"review-pull": "argilla", "review-auto": "auto", "review-push": "argilla"}
# Stages that describe the data's making; the release and report themselves are not part of its lineage.
OUTPUT_STAGES = frozenset({"release", "release-push", "report"})
UNKNOWN = "unknown"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageRecord(_Frozen):
    """One stage's manifest, reduced to what identifies the run: status, config hash, when, counts."""

    status: str
    config_hash: str
    finished_at: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)


class TeacherUse(_Frozen):
    """A teacher model, how it was reached, and how many samples it wrote."""

    backend: str
    model: str
    samples: int


class ReviewStatistics(_Frozen):
    """How the training samples were reviewed and what was decided."""

    mode: str = Field(description="argilla, auto, or unknown (verdicts without a review manifest).")
    outcomes: dict[str, int] = Field(default_factory=dict)
    reasons: dict[str, int] = Field(default_factory=dict)
    reviewers: int = 0
    agreement: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="Per question: percent agreement, Fleiss' kappa, alpha (nominal)."
    )


class Provenance(_Frozen):
    """Where a run's data came from; written into the release manifest and rendered in the dataset card."""

    run_name: str
    pipeline_name: str | None = None
    pipeline_config_hash: str | None = None
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    prompt_sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Source → licence(s) and prompt count."
    )
    tactics: dict[str, int] = Field(default_factory=dict)
    teachers: list[TeacherUse] = Field(default_factory=list)
    teacher_config: dict[str, Any] = Field(
        default_factory=dict,
        description="The generate stage's configured teacher: backend, model, sampling (no endpoints).",
    )
    judge: str = Field(default=UNKNOWN, description="The judge stage's judge: 'llm:<model>', 'rules', …")
    sampling: list[dict[str, Any]] = Field(
        default_factory=list, description="Distinct sampling parameters with sample counts."
    )
    templates: dict[str, list[str]] = Field(default_factory=dict, description="Template id → hashes.")
    judges: dict[str, int] = Field(default_factory=dict, description="Judge id → candidates scored.")
    calibration: dict[str, Any] | None = Field(
        default=None, description="The judge calibration the pairs used: file, sha256, thresholds per judge."
    )
    policy_models: dict[str, int] = Field(default_factory=dict)
    review: ReviewStatistics | None = None
    skipped_manifests: dict[str, str] = Field(default_factory=dict)


def _agreement(extra: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for question, report in (extra.get("agreement") or {}).items():
        if not isinstance(report, dict):
            continue
        alpha = report.get("krippendorff_alpha")
        out[str(question)] = {
            "percent_agreement": report.get("percent_agreement"),
            "fleiss_kappa": report.get("fleiss_kappa"),
            "krippendorff_alpha": alpha.get("nominal") if isinstance(alpha, dict) else None,
        }
    return out


def review_statistics(contents: RunContents) -> ReviewStatistics | None:
    """Review outcomes, reasons, reviewer count and agreement; ``None`` when the run has no review."""
    manifest = contents.manifests.get("review")
    if manifest is None and not contents.has(RunFiles.REVIEW_VERDICTS):
        return None
    verdicts = contents.review_verdicts
    extra = manifest.extra if manifest is not None else {}
    mode = extra.get("mode") or (_LEGACY_REVIEW_MODES.get(manifest.stage) if manifest is not None else None)
    return ReviewStatistics(
        mode=str(mode or "unknown"),
        outcomes=dict(Counter(v.outcome for v in verdicts)),
        reasons=dict(Counter(r for v in verdicts for r in v.reasons)),
        reviewers=len({r for v in verdicts for r in v.reviewers}),
        agreement=_agreement(extra),
    )


def _prompt_sources(contents: RunContents) -> dict[str, dict[str, Any]]:
    sources: dict[str, dict[str, Any]] = {}
    for prompt in contents.prompts:
        entry = sources.setdefault(prompt.source, {"licences": set(), "prompts": 0})
        entry["licences"].add(prompt.licence)
        entry["prompts"] += 1
    return {
        s: {"licences": sorted(e["licences"]), "prompts": e["prompts"]} for s, e in sorted(sources.items())
    }


def _sampling(contents: RunContents) -> list[dict[str, Any]]:
    counted = Counter(s.sampling for s in contents.samples or contents.accepted)
    return [{**params.model_dump(), "samples": count} for params, count in counted.most_common()]


def _templates(contents: RunContents) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for s in [*contents.samples, *contents.accepted, *contents.reviewed]:
        found.setdefault(s.template_id, set()).add(s.template_hash)
    for pair in contents.pairs:
        digest = pair.lineage.get("template_hash")
        if digest and not any(digest in hashes for hashes in found.values()):
            found.setdefault("(named in pairs only)", set()).add(digest)
    return {k: sorted(v) for k, v in sorted(found.items())}


def configured_teacher(contents: RunContents) -> dict[str, Any]:
    """Backend, model and sampling of the teacher in ``manifests/generate.json``; empty when not recorded."""
    manifest = contents.manifests.get("generate")
    teacher = manifest.config.get("teacher") if manifest else None
    if not isinstance(teacher, dict):
        return {}
    # Only what identifies the model: base URLs and key variables say where it ran, not what it was.
    return {k: teacher[k] for k in ("backend", "model", "sampling") if k in teacher}


def configured_judge(contents: RunContents) -> str:
    """The judge named by ``manifests/judge.json`` (its ``extra.judge``, else its config), or ``unknown``."""
    manifest = contents.manifests.get("judge")
    if manifest is None:
        return UNKNOWN
    named = manifest.extra.get("judge")
    if isinstance(named, str) and named:
        return named
    judge = manifest.config.get("judge")
    if isinstance(judge, dict) and judge.get("model"):
        return f"llm:{judge['model']}"
    return "rules" if "judge" in manifest.config and judge is None else UNKNOWN


def _pairs_calibration(contents: RunContents) -> dict[str, Any] | None:
    manifest = contents.manifests.get("pairs")
    found = manifest.extra.get("calibration") if manifest is not None else None
    if not isinstance(found, dict):
        return None
    judges = found.get("judges")
    judges = judges if isinstance(judges, dict) else {}
    return {
        "file": PurePath(str(found.get("file", ""))).name,  # the name, not where it lay on the builder's disk
        "sha256": found.get("sha256"),
        "judges": {
            j: {"thresholds": v.get("thresholds", {})} for j, v in judges.items() if isinstance(v, dict)
        },
    }


def run_provenance(contents: RunContents) -> Provenance:
    """Everything the dataset card and the release manifest say about where the data came from."""
    teachers = Counter((s.teacher_backend, s.teacher_model) for s in contents.samples or contents.accepted)
    judges = Counter(j.judge_id for j in contents.judgments)
    if not judges:
        judges = Counter(
            s.judge_id for p in contents.pairs for s in (p.chosen_scores, p.rejected_scores) if s is not None
        )
    _, training = contents.training_samples()
    counts = {
        "prompts": len(contents.prompts),
        "augmented_prompts": len(contents.augmented),
        "samples": len(contents.samples),
        "accepted_samples": len(contents.accepted),
        "reviewed_samples": len(contents.reviewed),
        "training_samples": len(training),
        "candidates": len(contents.candidates),
        "judgments": len(contents.judgments),
        "pairs": len(contents.pairs),
        "rejects": sum(len(r) for r in contents.rejects.values()),
    }
    stages = {
        stage: StageRecord(
            status=m.status,
            config_hash=m.config_hash,
            finished_at=m.finished_at.isoformat() if m.finished_at else None,
            counts=dict(m.counts),
        )
        for stage, m in sorted(contents.manifests.items())
        if stage not in OUTPUT_STAGES
    }
    provenance = Provenance(
        run_name=contents.root.resolve().name,
        pipeline_name=contents.pipeline.name if contents.pipeline else None,
        pipeline_config_hash=contents.pipeline.config_hash if contents.pipeline else None,
        stages=stages,
        counts=counts,
        prompt_sources=_prompt_sources(contents),
        tactics=dict(Counter(p.tactic for p in contents.augmented if p.tactic).most_common()),
        teachers=[TeacherUse(backend=b, model=m, samples=n) for (b, m), n in teachers.most_common()],
        teacher_config=configured_teacher(contents),
        judge=configured_judge(contents),
        sampling=_sampling(contents),
        templates=_templates(contents),
        judges=dict(judges.most_common()),
        calibration=_pairs_calibration(contents),
        policy_models=dict(Counter(c.policy_model for c in contents.candidates).most_common()),
        review=review_statistics(contents),
        skipped_manifests=dict(contents.skipped_manifests),
    )
    # Belt and braces: the fields above hold figures and names only, but a stage could name a source
    # after a URL with a key in it.
    return Provenance.model_validate(scrub_secrets(provenance.model_dump(mode="json")))
